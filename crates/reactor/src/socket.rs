//! Listening and connected sockets: TCP over IPv4 and IPv6, and Unix domain sockets.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

/// Where a listener listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address; port 0 picks a free port.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A listening socket passed by systemd socket activation, by its name
    /// (`FileDescriptorName=`); see [`crate::activation`].
    Inherited(String),
}

impl ListenAddr {
    /// Parses `host:port`, `[v6]:port`, `unix:/path` or `systemd:NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(name) = text.strip_prefix("systemd:") {
            return Ok(Self::Inherited(name.to_owned()));
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("a unix address needs a path, as in unix:/run/coreloop.sock".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        text.parse()
            .map(Self::Tcp)
            .map_err(|_| format!("`{text}` is not host:port, [v6]:port or unix:/path"))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Inherited(name) => write!(f, "systemd:{name}"),
        }
    }
}

/// The peer of an accepted connection.
pub(crate) type PeerAddr = Option<SocketAddr>;

/// A bound, listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Binds and listens. `reuse_port` lets several shards bind the same TCP address.
    pub fn bind(addr: &ListenAddr, backlog: u32, reuse_port: bool) -> io::Result<Self> {
        match addr {
            ListenAddr::Tcp(addr) => bind_tcp(*addr, backlog, reuse_port).map(Self::Tcp),
            ListenAddr::Unix(path) => bind_unix(path, backlog).map(Self::Unix),
            ListenAddr::Inherited(name) => {
                let (fd, socket) = crate::activation::take(name)?;
                adopt(fd, name, socket)
            }
        }
    }

    /// The address actually bound (the real port when port 0 was asked for).
    pub fn local_addr(&self, asked: &ListenAddr) -> io::Result<ListenAddr> {
        match self {
            Self::Tcp(listener) => listener.local_addr().map(ListenAddr::Tcp),
            Self::Unix(listener) => match listener.local_addr()?.as_pathname() {
                Some(path) => Ok(ListenAddr::Unix(path.to_owned())),
                None => Ok(asked.clone()),
            },
        }
    }

    /// Accepts one connection (accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC) and sets TCP_NODELAY.
    pub fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Self::Tcp(listener) => {
                let (stream, peer) = listener.accept()?;
                // Responses are written whole; Nagle would only delay the last segment.
                let _ = stream.set_nodelay(true);
                Ok((Stream::Tcp(stream), Some(peer)))
            }
            Self::Unix(listener) => {
                let (stream, _) = listener.accept()?;
                Ok((Stream::Unix(stream), None))
            }
        }
    }

    /// A second handle on the same socket, for shards sharing a Unix listener in reuseport mode.
    pub fn try_clone(&self) -> io::Result<Self> {
        let fd = match self {
            Self::Tcp(listener) => socket2::SockRef::from(listener).try_clone()?,
            Self::Unix(listener) => socket2::SockRef::from(listener).try_clone()?,
        };
        Ok(match self {
            Self::Tcp(_) => Self::Tcp(TcpListener::from_std(fd.into())),
            Self::Unix(_) => Self::Unix(UnixListener::from_std(fd.into())),
        })
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Self::Tcp(l) => l.register(registry, token, Interest::READABLE),
            Self::Unix(l) => l.register(registry, token, Interest::READABLE),
        }
    }

    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(l) => l.deregister(registry),
            Self::Unix(l) => l.deregister(registry),
        }
    }
}

/// Makes an inherited listening socket ours: non-blocking, close-on-exec, and of a kind we
/// serve. A socket that is not listening is refused: accept on it fails at once and forever.
fn adopt(fd: std::os::fd::RawFd, name: &str, socket: std::os::fd::OwnedFd) -> io::Result<Listener> {
    let socket = Socket::from(socket);
    if socket.r#type()? != Type::STREAM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the socket passed as fd {fd} (`{name}`) is not a stream socket: pass a ListenStream= socket"),
        ));
    }
    if !socket.is_listener()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the socket passed as fd {fd} (`{name}`) is not listening (SO_ACCEPTCONN is 0): \
                 pass a listening socket (ListenStream= with Accept=no in the socket unit)"
            ),
        ));
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    let local = socket.local_addr()?;
    if local.is_unix() {
        Ok(Listener::Unix(UnixListener::from_std(socket.into())))
    } else if local.as_socket().is_some() {
        Ok(Listener::Tcp(TcpListener::from_std(socket.into())))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an inherited socket is neither TCP nor Unix",
        ))
    }
}

fn bind_tcp(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog_arg(backlog))?;
    Ok(TcpListener::from_std(socket.into()))
}

fn bind_unix(path: &Path, backlog: u32) -> io::Result<UnixListener> {
    remove_stale_socket(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog_arg(backlog))?;
    Ok(UnixListener::from_std(socket.into()))
}

/// A socket file left by a process that died is in the way of `bind`; one that still has a
/// listener behind it is not ours to remove.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process listens on {}", path.display()),
        )),
        Err(_) => std::fs::remove_file(path),
    }
}

fn backlog_arg(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}

/// A connected socket.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Starts a non-blocking connect; it completes when the socket reports writable.
    pub fn connect(target: &ListenAddr) -> io::Result<Self> {
        match target {
            ListenAddr::Tcp(addr) => TcpStream::connect(*addr).map(Self::Tcp),
            ListenAddr::Unix(path) => UnixStream::connect(path).map(Self::Unix),
            ListenAddr::Inherited(name) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to the inherited socket `{name}`"),
            )),
        }
    }

    /// Where a connect stands: `Ok(true)` connected, `Ok(false)` still connecting, `Err` failed.
    pub fn connect_state(&self) -> io::Result<bool> {
        let error = match self {
            Self::Tcp(s) => s.take_error()?,
            Self::Unix(s) => s.take_error()?,
        };
        if let Some(error) = error {
            return Err(error);
        }
        let peer = match self {
            Self::Tcp(s) => s.peer_addr().map(|_| ()),
            Self::Unix(s) => s.peer_addr().map(|_| ()),
        };
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Write),
            Self::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    pub fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.register(registry, token, interest),
            Self::Unix(s) => s.register(registry, token, interest),
        }
    }

    pub fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.reregister(registry, token, interest),
            Self::Unix(s) => s.reregister(registry, token, interest),
        }
    }

    /// One `recv(2)`, made by rustix as a raw syscall. Through mio and std it was libc's
    /// `recv`, a cancellation point that enters and leaves asynchronous-cancel mode around the
    /// call: about 80 instructions per read under callgrind against about 15 (issue 16, S1).
    /// mio adds nothing on Linux (its `do_io` is the call itself), so readiness is unaffected.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, _) = rustix::net::recv(self.fd(), buf, rustix::net::RecvFlags::empty())?;
        Ok(n)
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Self::Tcp(s) => s.as_fd(),
            Self::Unix(s) => s.as_fd(),
        }
    }

    /// Whether bytes can go from a file to this socket by `sendfile(2)`: true for plain TCP
    /// and Unix sockets; a transport that must see the bytes (TLS in user space) says false,
    /// and its connections are sent file data through the output buffer instead.
    pub fn can_send_file(&self) -> bool {
        match self {
            Self::Tcp(_) | Self::Unix(_) => true,
        }
    }

    /// Holds back partial TCP segments (`TCP_CORK`) while on: a file sent by `sendfile`
    /// then leaves in full-sized packets instead of one short packet per call. Unix sockets
    /// have no segments: nothing to do.
    pub fn set_cork(&self, on: bool) -> io::Result<()> {
        match self {
            Self::Tcp(s) => rustix::net::sockopt::set_tcp_cork(s, on).map_err(io::Error::from),
            Self::Unix(_) => Ok(()),
        }
    }

    /// `sendfile(2)` of up to `count` bytes of `file` from `*offset` (moved past what was
    /// sent); only called when [`Self::can_send_file`].
    pub fn send_file(
        &mut self,
        file: &std::fs::File,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<usize> {
        let sent = match self {
            Self::Tcp(s) => rustix::fs::sendfile(&*s, file, Some(offset), count),
            Self::Unix(s) => rustix::fs::sendfile(&*s, file, Some(offset), count),
        };
        sent.map_err(io::Error::from)
    }

    /// One `send(2)` as a raw syscall (see [`Self::read`]). `MSG_NOSIGNAL`, as std's TCP
    /// write has: a peer that went away is an `EPIPE` error here, never a `SIGPIPE`, whether or
    /// not the process ignores the signal (a Unix socket too, which std wrote with `write(2)`).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::net::send(
            self.fd(),
            buf,
            rustix::net::SendFlags::NOSIGNAL,
        )?)
    }
}
