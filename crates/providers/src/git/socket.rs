//! The TCP connections libgit2 opens for `http://`, for `https://` (its TLS runs on top
//! of this stream, also through a proxy's `CONNECT` tunnel) and for `ssh://`.
//!
//! libgit2's own socket stream leaves Nagle's algorithm on. Its HTTP client writes a
//! request's headers and its body in separate small writes, so the body waits in the
//! kernel until the server acknowledges the headers, and the server, with nothing to
//! answer yet, delays that acknowledgement by up to 40 ms. Every POST of a fetch or a
//! push paid it: on loopback, a warm delivery spent 0.12 s of its 0.30 s in these
//! stalls. The git CLI (curl) and every HTTP client Courier uses for the forges' APIs
//! set `TCP_NODELAY`; this stream does the same, with what libgit2's stream does besides:
//! the connect, read and write timeouts and TCP keepalive.
//!
//! libgit2 takes a replacement through `git_stream_register` (`git2/sys/stream.h`),
//! which git2 does not wrap, so this module is FFI, registered once by
//! [`init_libgit2`](crate::git::init_libgit2). Its one constraint beyond that header:
//! libgit2's SSH transport hands libssh2 the socket's file descriptor, reading it from
//! libgit2's private `git_socket_stream` layout, so [`Socket`] starts with that layout.
//! The layout is libgit2 1.9's, the version libgit2-sys 0.18 pins; `courier serve`'s
//! SSH test breaks if it changes.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libgit2_sys as raw;

/// `git_stream` from `git2/sys/stream.h` (libgit2 1.9). The two one-bit fields
/// `encrypted` and `proxy_support` share one `unsigned int`; both stay 0 here (plain
/// TCP; libgit2's HTTP client speaks to proxies itself).
#[repr(C)]
struct GitStream {
    version: c_int,
    flags: c_uint,
    timeout: c_int,
    connect_timeout: c_int,
    connect: Option<unsafe extern "C" fn(*mut GitStream) -> c_int>,
    certificate: Option<unsafe extern "C" fn(*mut *mut raw::git_cert, *mut GitStream) -> c_int>,
    set_proxy: Option<unsafe extern "C" fn(*mut GitStream, *const raw::git_proxy_options) -> c_int>,
    read: Option<unsafe extern "C" fn(*mut GitStream, *mut c_void, usize) -> isize>,
    write: Option<unsafe extern "C" fn(*mut GitStream, *const c_char, usize, c_int) -> isize>,
    close: Option<unsafe extern "C" fn(*mut GitStream) -> c_int>,
    free: Option<unsafe extern "C" fn(*mut GitStream)>,
}

/// `git_stream_registration` from `git2/sys/stream.h`; libgit2 copies it.
#[repr(C)]
struct Registration {
    version: c_int,
    init: Option<unsafe extern "C" fn(*mut *mut GitStream, *const c_char, *const c_char) -> c_int>,
    wrap: Option<unsafe extern "C" fn(*mut *mut GitStream, *mut GitStream, *const c_char) -> c_int>,
}

const GIT_STREAM_VERSION: c_int = 1;
const GIT_STREAM_STANDARD: c_int = 1;

unsafe extern "C" {
    fn git_stream_register(kind: c_int, registration: *mut Registration) -> c_int;
}

/// One connection. The first four fields are libgit2's `git_socket_stream` (see the
/// module's comment); the rest is ours.
#[repr(C)]
struct Socket {
    parent: GitStream,
    host_ptr: *const c_char,
    port_ptr: *const c_char,
    fd: c_int,
    host: CString,
    port: CString,
    tcp: Option<TcpStream>,
}

/// How long a connection may stay silent, in milliseconds, given to every new stream as
/// libgit2 gives its own (`GIT_OPT_SET_SERVER_TIMEOUT`); 0 waits forever.
static TIMEOUT_MS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Connections opened through this stream since the process started.
static OPENED: AtomicU64 = AtomicU64::new(0);

/// Makes libgit2 open its TCP connections through this module, with `timeout` as the
/// longest a connection may stay silent (none if zero).
///
/// # Safety
///
/// libgit2 must be initialised (any `git2` call does it), and no other thread may be
/// opening a connection through libgit2 at the time.
pub(crate) unsafe fn register(timeout: Duration) -> Result<(), git2::Error> {
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    TIMEOUT_MS.store(millis, Ordering::Relaxed);
    let mut registration = Registration {
        version: GIT_STREAM_VERSION,
        init: Some(socket_new),
        wrap: None,
    };
    // SAFETY: the registration is a valid `git_stream_registration` that libgit2 copies
    // under its registry lock; the caller guarantees libgit2 is initialised.
    let code = unsafe { git_stream_register(GIT_STREAM_STANDARD, &mut registration) };
    if code < 0 {
        return Err(git2::Error::last_error(code));
    }
    Ok(())
}

/// How many connections libgit2 has opened through this stream in this process: with
/// [`register`] in effect, every one it opened.
pub fn connections_opened() -> u64 {
    OPENED.load(Ordering::Relaxed)
}

/// Sets libgit2's error for the calling thread, as its own streams do.
fn set_error(message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `message` is a valid NUL-terminated string; libgit2 copies it.
    unsafe { raw::git_error_set_str(raw::GIT_ERROR_NET as c_int, message.as_ptr()) };
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn millis(value: c_int) -> Option<Duration> {
    u64::try_from(value)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Opens a connection to the first address of `host` that answers, configured as the
/// module's comment says. The error is libgit2's wording, which the engine's
/// classification and the operators' searches know. The connect itself waits as long as
/// the system lets it (libgit2's default too: its connect timeout is unset).
fn connect(host: &str, port: &str, timeout: Option<Duration>) -> Result<TcpStream, String> {
    let resolve = |e: &dyn std::fmt::Display| format!("failed to resolve address for {host}: {e}");
    let port: u16 = port.parse().map_err(|_| resolve(&"invalid port"))?;
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| resolve(&e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for address in addresses {
        match TcpStream::connect(address) {
            Ok(tcp) => {
                return configure(tcp, timeout)
                    .map_err(|e| format!("failed to connect to {host}: {e}"));
            }
            Err(e) if is_timeout(&e) => {
                return Err(format!("failed to connect to {host}: Operation timed out"));
            }
            Err(e) => last = e,
        }
    }
    Err(format!("failed to connect to {host}: {last}"))
}

fn configure(tcp: TcpStream, timeout: Option<Duration>) -> io::Result<TcpStream> {
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(timeout)?;
    tcp.set_write_timeout(timeout)?;
    // As libgit2's stream: a peer that vanished is noticed after 60 s idle + 3 probes.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive)?;
    Ok(tcp)
}

/// The stream behind a `git_stream` pointer libgit2 hands back.
///
/// # Safety
///
/// `stream` must be one [`socket_new`] made and [`socket_free`] has not freed, used by
/// one thread at a time (libgit2 never shares a stream between threads).
unsafe fn socket<'a>(stream: *mut GitStream) -> &'a mut Socket {
    // SAFETY: the caller guarantees `stream` is the first field of a live `Socket`
    // (`repr(C)`), which is then valid for the cast and not aliased.
    unsafe { &mut *stream.cast::<Socket>() }
}

unsafe extern "C" fn socket_new(
    out: *mut *mut GitStream,
    host: *const c_char,
    port: *const c_char,
) -> c_int {
    if out.is_null() || host.is_null() || port.is_null() {
        set_error("invalid arguments to the socket stream");
        return -1;
    }
    // SAFETY: libgit2 passes NUL-terminated strings, valid for this call (copied below).
    let (host, port) = unsafe {
        (
            CStr::from_ptr(host).to_owned(),
            CStr::from_ptr(port).to_owned(),
        )
    };
    let mut socket = Box::new(Socket {
        parent: GitStream {
            version: GIT_STREAM_VERSION,
            flags: 0,
            timeout: TIMEOUT_MS.load(Ordering::Relaxed),
            connect_timeout: 0,
            connect: Some(socket_connect),
            certificate: None,
            set_proxy: None,
            read: Some(socket_read),
            write: Some(socket_write),
            close: Some(socket_close),
            free: Some(socket_free),
        },
        host_ptr: std::ptr::null(),
        port_ptr: std::ptr::null(),
        fd: -1,
        host,
        port,
        tcp: None,
    });
    // The strings' buffers live on the heap, so these stay valid while the box does.
    socket.host_ptr = socket.host.as_ptr();
    socket.port_ptr = socket.port.as_ptr();
    // SAFETY: libgit2 passes a valid out pointer; it owns the box from here and gives
    // it back to `socket_free`.
    unsafe { *out = Box::into_raw(socket).cast::<GitStream>() };
    0
}

unsafe extern "C" fn socket_connect(stream: *mut GitStream) -> c_int {
    // SAFETY: libgit2 calls this with a stream `socket_new` made.
    let socket = unsafe { socket(stream) };
    let host = socket.host.to_string_lossy().into_owned();
    let port = socket.port.to_string_lossy().into_owned();
    let timeout = millis(socket.parent.timeout);
    match connect(&host, &port, timeout) {
        Ok(tcp) => {
            OPENED.fetch_add(1, Ordering::Relaxed);
            socket.fd = tcp.as_raw_fd();
            socket.tcp = Some(tcp);
            0
        }
        Err(message) => {
            set_error(&message);
            -1
        }
    }
}

unsafe extern "C" fn socket_read(stream: *mut GitStream, data: *mut c_void, len: usize) -> isize {
    // SAFETY: libgit2 passes a stream `socket_new` made and a buffer of `len` writable
    // bytes; the slice is made only when `data` is not null.
    unsafe {
        transfer(stream, data, len, Direction::Read, |tcp| {
            tcp.read(std::slice::from_raw_parts_mut(data.cast::<u8>(), len))
        })
    }
}

unsafe extern "C" fn socket_write(
    stream: *mut GitStream,
    data: *const c_char,
    len: usize,
    _flags: c_int,
) -> isize {
    // SAFETY: libgit2 passes a stream `socket_new` made and `len` readable bytes; the
    // slice is made only when `data` is not null.
    unsafe {
        transfer(stream, data, len, Direction::Write, |tcp| {
            tcp.write(std::slice::from_raw_parts(data.cast::<u8>(), len))
        })
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

/// One read or write, answered as libgit2's own stream answers: the byte count,
/// `GIT_TIMEOUT` once the connection stayed silent too long, or -1, with its wording.
/// Nothing to transfer (`len` 0 or no buffer) is 0 without calling `op`.
///
/// # Safety
///
/// `stream` as for [`socket`]; `op` may build a slice of `len` bytes at `data`.
unsafe fn transfer<T>(
    stream: *mut GitStream,
    data: *const T,
    len: usize,
    direction: Direction,
    mut op: impl FnMut(&mut TcpStream) -> io::Result<usize>,
) -> isize {
    if len == 0 || data.is_null() {
        return 0;
    }
    // SAFETY: the caller passes a stream `socket_new` made.
    let socket = unsafe { socket(stream) };
    let (verb, failing) = match direction {
        Direction::Read => ("read from", "receiving data from"),
        Direction::Write => ("write to", "sending data to"),
    };
    let Some(tcp) = socket.tcp.as_mut() else {
        set_error(&format!("could not {verb} socket: not connected"));
        return -1;
    };
    loop {
        match op(tcp) {
            Ok(n) => return isize::try_from(n).unwrap_or(isize::MAX),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                set_error(&format!("could not {verb} socket: timed out"));
                return raw::GIT_TIMEOUT as isize;
            }
            Err(e) => {
                set_error(&format!("error {failing} socket: {e}"));
                return -1;
            }
        }
    }
}

unsafe extern "C" fn socket_close(stream: *mut GitStream) -> c_int {
    // SAFETY: libgit2 calls this with a stream `socket_new` made.
    let socket = unsafe { socket(stream) };
    socket.tcp = None;
    socket.fd = -1;
    0
}

unsafe extern "C" fn socket_free(stream: *mut GitStream) {
    // SAFETY: libgit2 frees each stream once, with the pointer `socket_new` gave it,
    // which came from `Box::into_raw` of a `Socket`.
    drop(unsafe { Box::from_raw(stream.cast::<Socket>()) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_has_no_nagle_delay_and_keepalive() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let tcp = connect("127.0.0.1", &port, Some(Duration::from_secs(7))).unwrap();
        assert!(tcp.nodelay().unwrap());
        assert_eq!(tcp.read_timeout().unwrap(), Some(Duration::from_secs(7)));
        assert_eq!(tcp.write_timeout().unwrap(), Some(Duration::from_secs(7)));
        assert!(socket2::SockRef::from(&tcp).keepalive().unwrap());
    }

    #[test]
    fn a_refused_connection_names_the_host_and_the_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        drop(listener);
        let error = connect("127.0.0.1", &port, None).unwrap_err();
        assert!(
            error.starts_with("failed to connect to 127.0.0.1: "),
            "{error}"
        );
        assert!(error.contains("refused"), "{error}");
    }
}
