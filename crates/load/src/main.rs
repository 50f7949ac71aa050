fn main() {
    std::process::exit(coreloop_load::main());
}
