//! Black-box tests: they start the real binaries and speak to them over real sockets.
