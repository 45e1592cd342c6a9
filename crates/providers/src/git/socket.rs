//! The connections libgit2 opens: TCP for `http://`, `https://` and `ssh://`, and TLS
//! (rustls, see [`tls_stream`]) on top of it for `https://`, also through a proxy's `CONNECT`
//! tunnel.
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
const GIT_STREAM_TLS: c_int = 2;
/// `encrypted`, the first one-bit field of [`GitStream::flags`].
const ENCRYPTED: c_uint = 1;

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

/// The socket timeout given to [`register`], for Courier's own HTTP requests to the
/// same servers (`receive_pack.rs`); `None` waits forever.
pub(crate) fn timeout() -> Option<Duration> {
    millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

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
    let mut tcp = Registration {
        version: GIT_STREAM_VERSION,
        init: Some(socket_new),
        wrap: None,
    };
    let mut tls = Registration {
        version: GIT_STREAM_VERSION,
        init: Some(tls_stream::init),
        wrap: Some(tls_stream::wrap),
    };
    for (kind, registration) in [(GIT_STREAM_STANDARD, &mut tcp), (GIT_STREAM_TLS, &mut tls)] {
        // SAFETY: the registration is a valid `git_stream_registration` that libgit2
        // copies under its registry lock; the caller guarantees libgit2 is initialised.
        let code = unsafe { git_stream_register(kind, registration) };
        if code < 0 {
            return Err(git2::Error::last_error(code));
        }
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
    set_error_of(raw::GIT_ERROR_NET, message);
}

fn set_error_of(class: raw::git_error_t, message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `message` is a valid NUL-terminated string; libgit2 copies it.
    unsafe { raw::git_error_set_str(class as c_int, message.as_ptr()) };
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

/// TLS for `https://`, with rustls on top of a [`Socket`] (or of the `CONNECT` tunnel
/// libgit2 opened through a proxy), instead of libgit2's OpenSSL.
///
/// libgit2 built with OpenSSL parses the whole system CA bundle when it starts, in every
/// process, whether or not it ever speaks TLS: 16 ms of each `courier deliver`, about
/// as long as a warm delivery's push. Here the system's authorities are loaded
/// once, at the first TLS connection, and git speaks the same TLS as the forges' APIs.
///
/// Verification works as libgit2's own TLS streams do: the handshake records whether the
/// system's authorities vouch for the certificate (chain, validity, host name; the
/// session and its verdict come from `git/tls.rs`) and finishes; `connect` then answers
/// `GIT_ECERTIFICATE` for a certificate they do not vouch for. libgit2 fails the
/// connection on it unless the certificate callback, shown the certificate, accepts it: Courier's accepts only one issued by the connection's own
/// `tls.ca_file` (`transport::check_certificate`). Handshake signatures are always
/// checked, so an accepted connection is authenticated by the certificate shown.
mod tls_stream {
    use std::io::{Read as _, Write as _};

    use rustls::ClientConnection;

    use super::*;
    use crate::git::tls::session;

    /// One TLS connection. `parent` first, as libgit2 sees it.
    #[repr(C)]
    struct Tls {
        parent: GitStream,
        /// What TLS runs on: our own socket (`owned`), or a tunnel libgit2 made and frees.
        io: *mut GitStream,
        owned: bool,
        host: String,
        session: Option<ClientConnection>,
        /// The certificate the server showed (DER), handed to libgit2's callback.
        leaf: Vec<u8>,
        x509: raw::git_cert_x509,
    }

    /// The stream under TLS, as `Read` and `Write`.
    struct Under(*mut GitStream);

    impl Under {
        /// The libgit2 answer `n` as I/O: the inner stream set libgit2's error already.
        fn result(n: isize) -> io::Result<usize> {
            match usize::try_from(n) {
                Ok(n) => Ok(n),
                Err(_) if n == raw::GIT_TIMEOUT as isize => {
                    Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
                }
                Err(_) => Err(io::Error::other(last_error())),
            }
        }
    }

    impl io::Read for Under {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // SAFETY: `self.0` is a live stream (`Tls::io`) and `buf` is writable for
            // its length; libgit2's streams follow `git_stream`'s contract.
            let n = unsafe {
                let read = (*self.0).read.expect("a git_stream can read");
                read(self.0, buf.as_mut_ptr().cast(), buf.len())
            };
            Under::result(n)
        }
    }

    impl io::Write for Under {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            // SAFETY: as for `read`, with `buf` readable for its length.
            let n = unsafe {
                let write = (*self.0).write.expect("a git_stream can write");
                write(self.0, buf.as_ptr().cast(), buf.len(), 0)
            };
            Under::result(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// libgit2's last error on this thread, as text.
    fn last_error() -> String {
        git2::Error::last_error(-1).message().to_owned()
    }

    fn new_stream(io: *mut GitStream, owned: bool, host: String) -> Box<Tls> {
        Box::new(Tls {
            parent: GitStream {
                version: GIT_STREAM_VERSION,
                flags: ENCRYPTED,
                timeout: 0,
                connect_timeout: 0,
                connect: Some(connect),
                certificate: Some(certificate),
                set_proxy: None,
                read: Some(read),
                write: Some(write),
                close: Some(close),
                free: Some(free),
            },
            io,
            owned,
            host,
            session: None,
            leaf: Vec::new(),
            x509: raw::git_cert_x509 {
                parent: raw::git_cert {
                    cert_type: raw::GIT_CERT_X509,
                },
                data: std::ptr::null_mut(),
                len: 0,
            },
        })
    }

    /// `git_stream_registration.init`: TLS to `host`:`port` over a new [`Socket`].
    pub(super) unsafe extern "C" fn init(
        out: *mut *mut GitStream,
        host: *const c_char,
        port: *const c_char,
    ) -> c_int {
        if out.is_null() || host.is_null() {
            set_error("invalid arguments to the TLS stream");
            return -1;
        }
        let mut socket: *mut GitStream = std::ptr::null_mut();
        // SAFETY: the arguments are libgit2's, passed on as `socket_new` expects them.
        let code = unsafe { socket_new(&mut socket, host, port) };
        if code < 0 {
            return code;
        }
        // SAFETY: libgit2 passes a NUL-terminated host name, valid for this call.
        let host = unsafe { CStr::from_ptr(host) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: libgit2 passes a valid out pointer and owns the box from here.
        unsafe { *out = Box::into_raw(new_stream(socket, true, host)).cast() };
        0
    }

    /// `git_stream_registration.wrap`: TLS over `io`, a proxy's tunnel libgit2 already
    /// connected and will free itself.
    pub(super) unsafe extern "C" fn wrap(
        out: *mut *mut GitStream,
        io: *mut GitStream,
        host: *const c_char,
    ) -> c_int {
        if out.is_null() || io.is_null() || host.is_null() {
            set_error("invalid arguments to the TLS stream");
            return -1;
        }
        // SAFETY: libgit2 passes a NUL-terminated host name, valid for this call.
        let host = unsafe { CStr::from_ptr(host) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: libgit2 passes a valid out pointer and owns the box from here.
        unsafe { *out = Box::into_raw(new_stream(io, false, host)).cast() };
        0
    }

    /// The TLS stream behind a pointer libgit2 hands back.
    ///
    /// # Safety
    ///
    /// `stream` must come from [`init`] or [`wrap`] and not be freed, used by one thread
    /// at a time.
    unsafe fn tls<'a>(stream: *mut GitStream) -> &'a mut Tls {
        // SAFETY: the caller guarantees `stream` is the first field of a live `Tls`.
        unsafe { &mut *stream.cast::<Tls>() }
    }

    fn ssl_error(message: &str) -> c_int {
        set_error_of(raw::GIT_ERROR_SSL, message);
        -1
    }

    unsafe extern "C" fn connect(stream: *mut GitStream) -> c_int {
        // SAFETY: libgit2 calls this with a stream `init` or `wrap` made.
        let tls = unsafe { tls(stream) };
        if tls.owned {
            // SAFETY: `io` is the socket `init` made, not yet connected.
            let code = unsafe { socket_connect(tls.io) };
            if code < 0 {
                return code;
            }
        }
        let (mut session, verdict) = match session(&tls.host) {
            Ok(started) => started,
            Err(why) => return ssl_error(&why),
        };
        let mut under = Under(tls.io);
        while session.is_handshaking() {
            if let Err(e) = session.complete_io(&mut under) {
                if is_timeout(&e) {
                    set_error("could not read from socket: timed out");
                    return raw::GIT_TIMEOUT;
                }
                return ssl_error(&format!("TLS handshake with {} failed: {e}", tls.host));
            }
        }
        let Some((leaf, vouched)) = verdict.take() else {
            return ssl_error(&format!("{} showed no certificate", tls.host));
        };
        tls.leaf = leaf;
        tls.session = Some(session);
        match vouched {
            Ok(()) => 0,
            Err(why) => {
                set_error_of(
                    raw::GIT_ERROR_SSL,
                    &format!("the SSL certificate is invalid: {why}"),
                );
                raw::GIT_ECERTIFICATE
            }
        }
    }

    unsafe extern "C" fn certificate(
        out: *mut *mut raw::git_cert,
        stream: *mut GitStream,
    ) -> c_int {
        // SAFETY: libgit2 calls this with a stream `init` or `wrap` made, after connect.
        let tls = unsafe { tls(stream) };
        if tls.leaf.is_empty() {
            return ssl_error("no certificate: the TLS stream is not connected");
        }
        tls.x509.data = tls.leaf.as_mut_ptr().cast();
        tls.x509.len = tls.leaf.len();
        // SAFETY: `out` is libgit2's; the certificate lives as long as the stream.
        unsafe { *out = (&raw mut tls.x509).cast() };
        0
    }

    /// One read or write of plaintext, answered as [`transfer`] answers.
    unsafe fn exchange(
        stream: *mut GitStream,
        len: usize,
        verb: &str,
        op: impl FnOnce(&mut rustls::Stream<'_, ClientConnection, Under>) -> io::Result<usize>,
    ) -> isize {
        if len == 0 {
            return 0;
        }
        // SAFETY: libgit2 calls this with a stream `init` or `wrap` made.
        let tls = unsafe { tls(stream) };
        let Some(session) = tls.session.as_mut() else {
            set_error(&format!("could not {verb} the TLS stream: not connected"));
            return -1;
        };
        let mut under = Under(tls.io);
        match op(&mut rustls::Stream::new(session, &mut under)) {
            Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
            // A close without TLS's close_notify: HTTP's own framing says whether
            // anything is missing, and a pack's checksum catches a cut pack.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) if is_timeout(&e) => {
                set_error(&format!("could not {verb} socket: timed out"));
                raw::GIT_TIMEOUT as isize
            }
            Err(e) => {
                set_error_of(raw::GIT_ERROR_SSL, &format!("TLS error: {e}"));
                -1
            }
        }
    }

    unsafe extern "C" fn read(stream: *mut GitStream, data: *mut c_void, len: usize) -> isize {
        if data.is_null() {
            return 0;
        }
        // SAFETY: libgit2 passes a buffer of `len` writable bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), len) };
        // SAFETY: libgit2 passes a stream `init` or `wrap` made.
        unsafe { exchange(stream, len, "read from", |s| s.read(buf)) }
    }

    unsafe extern "C" fn write(
        stream: *mut GitStream,
        data: *const c_char,
        len: usize,
        _flags: c_int,
    ) -> isize {
        if data.is_null() {
            return 0;
        }
        // SAFETY: libgit2 passes `len` readable bytes.
        let buf = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        // SAFETY: libgit2 passes a stream `init` or `wrap` made.
        unsafe { exchange(stream, len, "write to", |s| s.write(buf)) }
    }

    unsafe extern "C" fn close(stream: *mut GitStream) -> c_int {
        // SAFETY: libgit2 calls this with a stream `init` or `wrap` made.
        let tls = unsafe { tls(stream) };
        if let Some(mut session) = tls.session.take() {
            session.send_close_notify();
            let _ = session.write_tls(&mut Under(tls.io));
        }
        if tls.owned {
            // SAFETY: `io` is the socket `init` made.
            return unsafe { socket_close(tls.io) };
        }
        0
    }

    unsafe extern "C" fn free(stream: *mut GitStream) {
        // SAFETY: libgit2 frees each stream once, with the pointer `init` or `wrap` gave
        // it, which came from `Box::into_raw` of a `Tls`.
        let tls = unsafe { Box::from_raw(stream.cast::<Tls>()) };
        if tls.owned {
            // SAFETY: `io` is the socket `init` made, freed only here.
            unsafe { socket_free(tls.io) };
        }
    }
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
