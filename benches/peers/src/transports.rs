//! Every contender behind the same three small traits, so the measuring loops in
//! `child.rs` are identical for all of them (monomorphised, no dynamic dispatch).
//!
//! - [`Tx`] sends one message (a byte slice),
//! - [`Rx`] receives one message and lends its bytes to a closure (zero-copy where the
//!   transport allows it: the floor, shmbus and iceoryx2 hand out their shared memory),
//! - [`Pair`] of a Tx and an Rx is one process's end of a ping-pong; `echo` receives one
//!   message and sends the same bytes back straight from the receive buffer.
//!
//! Rendezvous: the process spawned first ("first": the pong or the consumer) creates
//! what must exist (socket, FIFO, shared file, services) and the harness starts the
//! other one only after the first has printed `ready`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::announce_ready;

/// How a receiver (and a back-pressured sender) waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    Spin,
    Yield,
    Block,
}

impl WaitMode {
    pub fn parse(s: &str) -> WaitMode {
        match s {
            "yield" => WaitMode::Yield,
            "block" => WaitMode::Block,
            _ => WaitMode::Spin,
        }
    }

    #[inline]
    fn pause(self) {
        match self {
            WaitMode::Spin => std::hint::spin_loop(),
            WaitMode::Yield | WaitMode::Block => std::thread::yield_now(),
        }
    }
}

pub trait Tx {
    fn send(&mut self, msg: &[u8]);
    /// Called once before the first message, after every receiver has connected.
    fn connect(&mut self) {}
}

pub trait Rx {
    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R;
    /// Called once after `go`, before the producers start: connect to every sender.
    fn connect(&mut self) {}
}

pub struct Pair<T, R> {
    pub tx: T,
    pub rx: R,
}

impl<T: Tx, R: Rx> Pair<T, R> {
    /// Receive one message and send the same bytes back.
    #[inline]
    pub fn echo(&mut self) {
        let tx = &mut self.tx;
        self.rx.recv(|b| tx.send(b));
    }
}

/// What a transport needs to know to set itself up.
pub struct Ctx {
    /// A private directory for this group of processes (sockets, FIFOs, bus).
    pub dir: PathBuf,
    /// A unique tag for names outside `dir` (iceoryx2 services, Redis channels).
    pub tag: String,
    /// Message size in bytes (fixed for a run).
    pub size: usize,
    pub wait: WaitMode,
    /// Created first: binds, creates, listens.
    pub first: bool,
    /// Redis socket path.
    pub redis: Option<PathBuf>,
}

fn retry<T, E: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e:?}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

// ---------------------------------------------------------------- floor

/// A shared region: the sequence word, the length, then the payload, so a message of
/// up to 48 bytes shares one cache line with its sequence word. The floor is the
/// least any shared-memory transport can do: copy the bytes in, publish a word with
/// release, spin on it with acquire on the other side.
pub const FLOOR_REGION: usize = 16 * 1024;

#[repr(C)]
struct FloorHead {
    seq: AtomicU64,
    len: AtomicU64,
}

pub struct FloorTx {
    base: *mut u8,
    seq: u64,
    _map: Rc<SharedMap>,
}

pub struct FloorRx {
    base: *const u8,
    seq: u64,
    _map: Rc<SharedMap>,
}

impl Tx for FloorTx {
    #[inline]
    fn send(&mut self, msg: &[u8]) {
        self.seq += 1;
        // SAFETY: `base` points at a FLOOR_REGION-byte region of a live shared mapping,
        // aligned to 128; only this side writes it, and the reader reads the payload
        // only after it acquires the sequence word stored below.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.base.add(16), msg.len());
            let head = &*(self.base as *const FloorHead);
            head.len.store(msg.len() as u64, Ordering::Relaxed);
            head.seq.store(self.seq, Ordering::Release);
        }
    }
}

impl Rx for FloorRx {
    #[inline]
    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        self.seq += 1;
        // SAFETY: as in FloorTx::send; the writer does not touch the payload again
        // before this side answers (ping-pong), so the slice stays stable during `f`.
        unsafe {
            let head = &*(self.base as *const FloorHead);
            while head.seq.load(Ordering::Acquire) != self.seq {
                std::hint::spin_loop();
            }
            let len = head.len.load(Ordering::Relaxed) as usize;
            f(std::slice::from_raw_parts(self.base.add(16), len))
        }
    }
}

/// A MAP_SHARED mapping (of a file in `dir`, or anonymous for two threads).
pub struct SharedMap {
    ptr: *mut u8,
    len: usize,
    owned: bool,
}

impl SharedMap {
    pub fn anonymous(len: usize) -> SharedMap {
        // SAFETY: a fresh anonymous shared mapping; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(ptr != libc::MAP_FAILED, "mmap");
        SharedMap {
            ptr: ptr as *mut u8,
            len,
            owned: true,
        }
    }

    pub fn file(path: &Path, len: usize, create: bool) -> SharedMap {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        if create {
            f.set_len(len as u64).expect("size shared file");
        }
        use std::os::fd::AsRawFd;
        // SAFETY: mapping `len` bytes of a file of that size; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert!(ptr != libc::MAP_FAILED, "mmap");
        SharedMap {
            ptr: ptr as *mut u8,
            len,
            owned: true,
        }
    }
}

impl SharedMap {
    /// A view of the same mapping that does not unmap it (the owner must outlive it).
    pub fn borrowed(&self) -> SharedMap {
        SharedMap {
            ptr: self.ptr,
            len: self.len,
            owned: false,
        }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: unmapping exactly what `mmap` returned, once, by its owner.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

/// Region 0 carries ping → pong, region 1 pong → ping.
pub fn floor_pair(map: Rc<SharedMap>, ping: bool) -> Pair<FloorTx, FloorRx> {
    let (out, inp) = if ping { (0, 1) } else { (1, 0) };
    Pair {
        // SAFETY: both regions lie inside the 2 * FLOOR_REGION-byte mapping.
        tx: FloorTx {
            base: unsafe { map.ptr.add(out * FLOOR_REGION) },
            seq: 0,
            _map: map.clone(),
        },
        rx: FloorRx {
            // SAFETY: as above.
            base: unsafe { map.ptr.add(inp * FLOOR_REGION) },
            seq: 0,
            _map: map,
        },
    }
}

pub fn floor_proc(ctx: &Ctx) -> Pair<FloorTx, FloorRx> {
    let map = SharedMap::file(&ctx.dir.join("floor.shm"), 2 * FLOOR_REGION, ctx.first);
    floor_pair(Rc::new(map), !ctx.first)
}

// ---------------------------------------------------------------- shmbus (Rust API)

pub struct ShmTx {
    publisher: shmbus::Publisher,
}

pub struct ShmRx {
    sub: shmbus::Subscriber,
}

/// Ring capacity of every shmbus topic in the harness.
pub const SHM_CAPACITY: u64 = 1 << 20;

fn shm_wait(w: WaitMode) -> shmbus::Wait {
    match w {
        WaitMode::Spin => shmbus::Wait::Spin,
        WaitMode::Yield => shmbus::Wait::Yield,
        WaitMode::Block => shmbus::Wait::Block,
    }
}

fn shm_topic(ctx: &Ctx, name: &str) -> shmbus::Topic {
    let bus = shmbus::Bus::open_dir(ctx.dir.join("bus")).expect("open bus");
    retry("open topic", || {
        bus.topic(name).capacity(SHM_CAPACITY).open_or_create()
    })
}

pub fn shm_tx(ctx: &Ctx, name: &str) -> ShmTx {
    let mut publisher = shm_topic(ctx, name).publisher().expect("publisher");
    // Publishers under Block back off; spin/yield keep the sender on its CPU.
    publisher.set_wait(match ctx.wait {
        WaitMode::Block => shmbus::Wait::Block,
        w => shm_wait(w),
    });
    ShmTx { publisher }
}

pub fn shm_rx(ctx: &Ctx, name: &str) -> ShmRx {
    let sub = shm_topic(ctx, name)
        .subscriber()
        .start(shmbus::Start::Earliest)
        .wait(shm_wait(ctx.wait))
        .open()
        .expect("subscriber");
    ShmRx { sub }
}

impl Tx for ShmTx {
    #[inline]
    fn send(&mut self, msg: &[u8]) {
        self.publisher.send_bytes(0, msg).expect("shmbus send");
    }
}

impl Rx for ShmRx {
    #[inline]
    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let ev = self.sub.recv_bytes().expect("shmbus recv");
        f(ev.bytes())
    }
}

pub fn shm_pair(ctx: &Ctx) -> Pair<ShmTx, ShmRx> {
    let (out, inp) = if ctx.first { ("b", "a") } else { ("a", "b") };
    // Both topics exist before either side subscribes or publishes.
    let rx = shm_rx(ctx, inp);
    Pair {
        tx: shm_tx(ctx, out),
        rx,
    }
}

// ---------------------------------------------------------------- iceoryx2

use iceoryx2::port::publisher::Publisher as IcePublisher;
use iceoryx2::port::subscriber::Subscriber as IceSubscriber;
use iceoryx2::prelude::*;

type IceSvc =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

pub struct IceTx {
    publisher: IcePublisher<ipc::Service, [u8], ()>,
    wait: WaitMode,
    _svc: Rc<IceSvc>,
    _node: Rc<Node<ipc::Service>>,
}

pub struct IceRx {
    sub: IceSubscriber<ipc::Service, [u8], ()>,
    wait: WaitMode,
    _svc: Rc<IceSvc>,
    _node: Rc<Node<ipc::Service>>,
}

/// Samples a subscriber may queue (both the service maximum and each subscriber's
/// buffer): lossless delivery with back-pressure, as in shmbus's reliable mode.
pub const ICE_BUFFER: usize = 1024;

pub fn ice_node() -> Rc<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    Rc::new(
        NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .expect("iceoryx2 node"),
    )
}

fn ice_service(node: &Node<ipc::Service>, name: &str) -> Rc<IceSvc> {
    let name: ServiceName = name.try_into().expect("service name");
    Rc::new(retry("iceoryx2 service", || {
        node.service_builder(&name)
            .publish_subscribe::<[u8]>()
            .max_publishers(2)
            .max_subscribers(2)
            .max_nodes(4)
            .history_size(0)
            .subscriber_max_buffer_size(ICE_BUFFER)
            .subscriber_max_borrowed_samples(2)
            .enable_safe_overflow(false)
            .open_or_create()
    }))
}

pub fn ice_tx(ctx: &Ctx, node: &Rc<Node<ipc::Service>>, name: &str) -> IceTx {
    let svc = ice_service(node, &format!("{}/{name}", ctx.tag));
    let publisher = svc
        .publisher_builder()
        .initial_max_slice_len(ctx.size.max(1))
        .max_loaned_samples(2)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("iceoryx2 publisher");
    IceTx {
        publisher,
        wait: ctx.wait,
        _svc: svc,
        _node: node.clone(),
    }
}

pub fn ice_rx(ctx: &Ctx, node: &Rc<Node<ipc::Service>>, name: &str) -> IceRx {
    let svc = ice_service(node, &format!("{}/{name}", ctx.tag));
    let sub = svc
        .subscriber_builder()
        .buffer_size(ICE_BUFFER)
        .create()
        .expect("iceoryx2 subscriber");
    IceRx {
        sub,
        wait: ctx.wait,
        _svc: svc,
        _node: node.clone(),
    }
}

use iceoryx2::port::update_connections::UpdateConnections;

impl Tx for IceTx {
    fn connect(&mut self) {
        self.publisher
            .update_connections()
            .expect("iceoryx2 publisher connections");
    }

    #[inline]
    fn send(&mut self, msg: &[u8]) {
        loop {
            match self.publisher.loan_slice_uninit(msg.len()) {
                Ok(s) => {
                    s.write_from_slice(msg).send().expect("iceoryx2 send");
                    return;
                }
                Err(_) => self.wait.pause(),
            }
        }
    }
}

impl Rx for IceRx {
    /// A subscriber connects to publishers lazily (on receive); a publisher does not
    /// wait for a subscriber it is not yet connected to, so connect first.
    fn connect(&mut self) {
        self.sub
            .has_samples()
            .expect("iceoryx2 subscriber connections");
    }

    #[inline]
    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        loop {
            if let Some(s) = self.sub.receive().expect("iceoryx2 receive") {
                return f(s.payload());
            }
            self.wait.pause();
        }
    }
}

pub fn ice_pair(ctx: &Ctx) -> Pair<IceTx, IceRx> {
    let node = ice_node();
    let (out, inp) = if ctx.first { ("b", "a") } else { ("a", "b") };
    let rx = ice_rx(ctx, &node, inp);
    Pair {
        tx: ice_tx(ctx, &node, out),
        rx,
    }
}

/// iceoryx2's event service: a notifier wakes a listener blocked in `blocking_wait`.
pub struct IceEvTx {
    notifier: iceoryx2::port::notifier::Notifier<ipc::Service>,
    _node: Rc<Node<ipc::Service>>,
}

pub struct IceEvRx {
    listener: iceoryx2::port::listener::Listener<ipc::Service>,
    _node: Rc<Node<ipc::Service>>,
}

impl Tx for IceEvTx {
    fn send(&mut self, _msg: &[u8]) {
        self.notifier.notify().expect("iceoryx2 notify");
    }
}

impl Rx for IceEvRx {
    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut got = 0;
        while got == 0 {
            self.listener
                .blocking_wait(|_| got += 1)
                .expect("iceoryx2 blocking_wait");
        }
        f(&[])
    }
}

pub fn ice_event_pair(ctx: &Ctx) -> Pair<IceEvTx, IceEvRx> {
    let node = ice_node();
    let (out, inp) = if ctx.first {
        ("eb", "ea")
    } else {
        ("ea", "eb")
    };
    let event = |n: &str| {
        let name: ServiceName = format!("{}/{n}", ctx.tag)
            .as_str()
            .try_into()
            .expect("service name");
        retry("iceoryx2 event service", || {
            node.service_builder(&name)
                .event()
                .max_notifiers(2)
                .max_listeners(2)
                .max_nodes(4)
                .open_or_create()
        })
    };
    let ein = event(inp);
    let eout = event(out);
    let listener = ein.listener_builder().create().expect("listener");
    let notifier = eout.notifier_builder().create().expect("notifier");
    Pair {
        tx: IceEvTx {
            notifier,
            _node: node.clone(),
        },
        rx: IceEvRx {
            listener,
            _node: node,
        },
    }
}

// ---------------------------------------------------------------- streams (UDS, pipes)

/// A byte stream written with one `write_all` per message and read with `read_exact`
/// of the known message size (one system call each way in the common case).
pub struct StreamTx<W: Write> {
    w: W,
}

pub struct StreamRx<R: Read> {
    r: R,
    buf: Vec<u8>,
}

impl<W: Write> Tx for StreamTx<W> {
    #[inline]
    fn send(&mut self, msg: &[u8]) {
        self.w.write_all(msg).expect("stream write");
    }
}

impl<R: Read> Rx for StreamRx<R> {
    #[inline]
    fn recv<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> T {
        self.r.read_exact(&mut self.buf).expect("stream read");
        f(&self.buf)
    }
}

/// The first side listens, announces itself ready, then accepts.
fn uds_stream(ctx: &Ctx, name: &str) -> UnixStream {
    let path = ctx.dir.join(name);
    if ctx.first {
        let l = UnixListener::bind(&path).expect("bind UDS");
        announce_ready();
        let (s, _) = l.accept().expect("accept UDS");
        s
    } else {
        retry("connect UDS", || UnixStream::connect(&path))
    }
}

pub fn uds_pair(ctx: &Ctx) -> Pair<StreamTx<UnixStream>, StreamRx<UnixStream>> {
    let s = uds_stream(ctx, "uds.sock");
    Pair {
        tx: StreamTx {
            w: s.try_clone().expect("clone UDS"),
        },
        rx: StreamRx {
            r: s,
            buf: vec![0; ctx.size],
        },
    }
}

pub fn uds_tx(ctx: &Ctx) -> StreamTx<UnixStream> {
    StreamTx {
        w: uds_stream(ctx, "uds.sock"),
    }
}

pub fn uds_rx(ctx: &Ctx) -> StreamRx<UnixStream> {
    StreamRx {
        r: uds_stream(ctx, "uds.sock"),
        buf: vec![0; ctx.size],
    }
}

/// Two named pipes (FIFOs): a carries ping → pong, b pong → ping.
pub fn pipe_pair(ctx: &Ctx) -> Pair<StreamTx<std::fs::File>, StreamRx<std::fs::File>> {
    let a = ctx.dir.join("fifo-a");
    let b = ctx.dir.join("fifo-b");
    let open = |p: &Path, write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open(p)
            .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
    };
    let (tx, rx) = if ctx.first {
        for p in [&a, &b] {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
            // SAFETY: a valid NUL-terminated path.
            if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                panic!("mkfifo: {}", std::io::Error::last_os_error());
            }
        }
        announce_ready();
        let rx = open(&a, false);
        (open(&b, true), rx)
    } else {
        let tx = open(&a, true);
        (tx, open(&b, false))
    };
    Pair {
        tx: StreamTx { w: tx },
        rx: StreamRx {
            r: rx,
            buf: vec![0; ctx.size],
        },
    }
}

// ---------------------------------------------------------------- ZeroMQ

#[cfg(feature = "zmq")]
pub mod zmq_t {
    use super::*;

    pub struct ZTx {
        s: Rc<zmq::Socket>,
    }

    pub struct ZRx {
        s: Rc<zmq::Socket>,
        buf: Vec<u8>,
    }

    impl Tx for ZTx {
        #[inline]
        fn send(&mut self, msg: &[u8]) {
            self.s.send(msg, 0).expect("zmq send");
        }
    }

    impl Rx for ZRx {
        #[inline]
        fn recv<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> T {
            let n = self.s.recv_into(&mut self.buf, 0).expect("zmq recv");
            f(&self.buf[..n.min(self.buf.len())])
        }
    }

    /// A PAIR socket over `ipc://` (the first side binds).
    pub fn zmq_pair(ctx: &Ctx) -> Pair<ZTx, ZRx> {
        let zctx = zmq::Context::new();
        let s = zctx.socket(zmq::PAIR).expect("zmq socket");
        let ep = format!("ipc://{}", ctx.dir.join("zmq.sock").display());
        if ctx.first {
            s.bind(&ep).expect("zmq bind");
        } else {
            s.connect(&ep).expect("zmq connect");
        }
        let s = Rc::new(s);
        Pair {
            tx: ZTx { s: s.clone() },
            rx: ZRx {
                s,
                buf: vec![0; ctx.size],
            },
        }
    }
}

// ---------------------------------------------------------------- Redis pub/sub

/// A minimal RESP client: PUBLISH on one connection, SUBSCRIBE on another (a
/// subscribed connection cannot publish). PUBLISH replies are drained in batches so the
/// sender does not wait for Redis's acknowledgement of each message.
pub struct RedisTx {
    w: UnixStream,
    r: BufReader<UnixStream>,
    chan: String,
    frame: Vec<u8>,
    pending: usize,
}

pub struct RedisRx {
    r: BufReader<UnixStream>,
    line: String,
    buf: Vec<u8>,
}

fn read_line(r: &mut BufReader<UnixStream>, line: &mut String) {
    line.clear();
    r.read_line(line).expect("redis read");
    assert!(!line.is_empty(), "redis closed the connection");
    assert!(!line.starts_with('-'), "redis error: {line}");
}

fn bulk_len(line: &str) -> usize {
    line.trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("redis: expected a bulk string, got {line:?}"))
}

impl RedisTx {
    fn drain(&mut self) {
        let mut line = String::new();
        while self.pending > 0 {
            read_line(&mut self.r, &mut line);
            self.pending -= 1;
        }
    }
}

impl Tx for RedisTx {
    fn send(&mut self, msg: &[u8]) {
        self.frame.clear();
        write!(
            self.frame,
            "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{}\r\n${}\r\n",
            self.chan.len(),
            self.chan,
            msg.len()
        )
        .expect("frame");
        self.frame.extend_from_slice(msg);
        self.frame.extend_from_slice(b"\r\n");
        self.w.write_all(&self.frame).expect("redis write");
        self.pending += 1;
        if self.pending >= 64 {
            self.drain();
        }
    }
}

impl Drop for RedisTx {
    fn drop(&mut self) {
        self.drain();
    }
}

impl Rx for RedisRx {
    fn recv<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> T {
        // *3 $7 message $n channel $len payload
        read_line(&mut self.r, &mut self.line);
        assert_eq!(self.line.trim_end(), "*3", "redis push");
        read_line(&mut self.r, &mut self.line);
        let n = bulk_len(&self.line);
        self.buf.resize(n + 2, 0);
        self.r.read_exact(&mut self.buf).expect("redis read");
        read_line(&mut self.r, &mut self.line);
        let n = bulk_len(&self.line);
        self.buf.resize(n + 2, 0);
        self.r.read_exact(&mut self.buf).expect("redis read");
        read_line(&mut self.r, &mut self.line);
        let n = bulk_len(&self.line);
        self.buf.resize(n + 2, 0);
        self.r.read_exact(&mut self.buf).expect("redis read");
        f(&self.buf[..n])
    }
}

pub fn redis_pair(ctx: &Ctx) -> Pair<RedisTx, RedisRx> {
    let sock = ctx.redis.as_ref().expect("redis socket");
    let (out, inp) = if ctx.first { ("b", "a") } else { ("a", "b") };
    let chan = |c: &str| format!("{}-{c}", ctx.tag);
    let sub = UnixStream::connect(sock).expect("connect redis");
    let mut subr = BufReader::new(sub.try_clone().expect("clone"));
    let ch = chan(inp);
    (&sub)
        .write_all(format!("*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{ch}\r\n", ch.len()).as_bytes())
        .expect("subscribe");
    // *3 $9 subscribe $n chan :1
    let mut line = String::new();
    for _ in 0..6 {
        read_line(&mut subr, &mut line);
    }
    let w = UnixStream::connect(sock).expect("connect redis");
    let r = BufReader::new(w.try_clone().expect("clone"));
    Pair {
        tx: RedisTx {
            w,
            r,
            chan: chan(out),
            frame: Vec::new(),
            pending: 0,
        },
        rx: RedisRx {
            r: subr,
            line,
            buf: Vec::new(),
        },
    }
}
