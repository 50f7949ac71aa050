fn main() {
    std::process::exit(coreloop_server::main());
}
