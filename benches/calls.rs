//! The cost of crossing from a guest into the host: permission-checked host calls against
//! unchecked ones of the same shape, WASI calls against their native equivalents, and an
//! allowed HTTP request to loopback through warden's egress broker against the same request
//! made by the host. Run with `cargo bench -p warden-runtime --bench calls`, or one part with a
//! filter after `--`: `hostcall-component`, `hostcall-core`, `file-read`, `http-loopback`.
//!
//! - `hostcall-component`: the `bench-hostcall` component loops over one call in one export
//!   call, `n` times, and `iter_custom` times that export call. It runs on warden's own engine
//!   ([`Warden::engine`]: epoch interruption on, the same epoch callback as a run) with
//!   warden's own `warden:host/secrets` implementation (`warden::secrets::add_to_linker`, as
//!   `Warden::new` adds it), next to a no-op interface of the same shapes defined here with
//!   `func_wrap`: `secret.name()` against `thing.name()`, `secret.binding()` against
//!   `thing.binding()`. The difference is what the permission check costs.
//! - `hostcall-core`: a core module (WAT, below) on the same engine with wasmtime-wasi's
//!   preview 1 functions, as warden links them: a no-op import, `clock_time_get`, and a 4 KiB
//!   `fd_pread` of a granted file, each against its native equivalent.
//! - `file-read`: the `readmany` benchmark twin (`std::fs::read` of a 4 KiB granted file: open,
//!   stat, read, close) through `Workload::run`, against the native twin; criterion's linear
//!   sampling leaves start-up out of the slope.
//! - `http-loopback`: K GET requests to a loopback HTTP/1.1 server started here, each on a fresh
//!   connection: by the `net-probe` component under warden (`[[http]]` rule, and once more
//!   with a secret injected), by the same component with wasmtime-wasi-http's default hooks
//!   (its own `send_request`, no checks, on wasmtime-wasi's runtime), and by the host with
//!   hyper's HTTP/1 client (what warden's broker uses) and no checks.

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use warden::manifest::{Inject, Secret, SecretSource, UrlPrefix};
use warden::secrets::{Secrets, SecretsCtx, SecretsView};
use warden::{
    Audit, AuditSink, EngineSettings, Input, Manifest, Policy, RunOptions, Warden, Workload,
};
use warden_guest_artifacts as guests;
use wasmtime::component::{Component, Linker, Resource, ResourceTable, ResourceType};
use wasmtime::{Engine, Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

#[path = "support.rs"]
mod support;
// Live instances in one process (memory, not time): runs only with WARDEN_DENSITY=N.
#[path = "density.rs"]
mod density;
use support::{args, native_twins};

/// The secret's binding, and the no-op resource's: both calls copy the same string out.
const BINDING: &str = "http://127.0.0.1:9/v1/";

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    mode: SamplingMode,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(mode);
    g
}

/// The same epoch handling as a warden run: a deadline every tick, and a callback that lets
/// the guest go on.
fn epochs_like_warden<T>(store: &mut Store<T>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1)));
}

// ---------------------------------------------------------------------------------------------
// Component host calls

/// A no-op resource of the same shape as a secret handle.
struct Thing {
    name: String,
    binding: Option<String>,
}

struct ComponentHost {
    wasi: WasiCtx,
    table: ResourceTable,
    secrets: SecretsCtx,
}

impl WasiView for ComponentHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn secrets_view(h: &mut ComponentHost) -> SecretsView<'_> {
    SecretsView {
        ctx: &h.secrets,
        table: &mut h.table,
    }
}

fn component_linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentHost>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    warden::secrets::add_to_linker(&mut linker, secrets_view)?;
    let mut base = linker.instance("warden-bench:hostcall/baseline@0.1.0")?;
    base.resource(
        "thing",
        ResourceType::host::<Thing>(),
        |mut store: StoreContextMut<'_, ComponentHost>, rep| {
            store
                .data_mut()
                .table
                .delete(Resource::<Thing>::new_own(rep))?;
            Ok(())
        },
    )?;
    base.func_wrap(
        "[method]thing.name",
        |store: StoreContextMut<'_, ComponentHost>, (h,): (Resource<Thing>,)| {
            Ok((store.data().table.get(&h)?.name.clone(),))
        },
    )?;
    base.func_wrap(
        "[method]thing.binding",
        |store: StoreContextMut<'_, ComponentHost>, (h,): (Resource<Thing>,)| {
            Ok((store.data().table.get(&h)?.binding.clone(),))
        },
    )?;
    base.func_wrap(
        "open",
        |mut store: StoreContextMut<'_, ComponentHost>, (name,): (String,)| {
            let thing = Thing {
                name,
                binding: Some(BINDING.into()),
            };
            Ok((store.data_mut().table.push(thing)?,))
        },
    )?;
    base.func_wrap("noop", |_: StoreContextMut<'_, ComponentHost>, (): ()| {
        Ok(())
    })?;
    Ok(linker)
}

fn hostcall_component(c: &mut Criterion) {
    let warden = Warden::new(EngineSettings::default()).expect("engine");
    let engine = warden.engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, "bench-secret-value-0123456789").expect("write the key");
    let secrets = Secrets::load(&[Secret {
        name: "bench".into(),
        from: SecretSource::File(key),
        inject: Some(Inject {
            header: "Authorization".into(),
            format: "Bearer {secret}".into(),
            url: BINDING.into(),
            prefix: UrlPrefix::parse(BINDING).expect("a valid binding URL"),
        }),
        reveal: false,
    }])
    .expect("load the secret");
    let linker = component_linker(engine).expect("linker");
    let component = Component::from_file(engine, guests::BENCH_HOSTCALL_P2).expect("compile");
    let pre = linker.instantiate_pre(&component).expect("pre-instantiate");
    let mut store = Store::new(
        engine,
        ComponentHost {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            secrets: SecretsCtx {
                secrets: Arc::new(secrets),
                audit: Audit::new(AuditSink::disabled(), "bench"),
            },
        },
    );
    epochs_like_warden(&mut store);
    let instance = pre.instantiate(&mut store).expect("instantiate");
    let run = instance
        .get_typed_func::<(&str, u32), (u64,)>(&mut store, "run")
        .expect("export `run`");
    let mut call = |what: &str, n: u64| -> (u64, Duration) {
        let n = u32::try_from(n).expect("fewer than 2^32 calls");
        let started = Instant::now();
        let (sum,) = run.call(&mut store, (what, n)).expect("run");
        (sum, started.elapsed())
    };
    // Both shapes hand back the same strings.
    for (secret, baseline, len) in [
        ("secret-name", "baseline-name", "bench".len()),
        ("secret-binding", "baseline-binding", BINDING.len()),
    ] {
        assert_eq!(call(secret, 3).0, 3 * len as u64, "{secret}");
        assert_eq!(call(baseline, 3).0, 3 * len as u64, "{baseline}");
    }
    let mut g = group(c, "hostcall-component", SamplingMode::Auto);
    for what in [
        "loop",
        "noop",
        "baseline-name",
        "secret-name",
        "baseline-binding",
        "secret-binding",
        "clock",
    ] {
        g.bench_function(what, |b| b.iter_custom(|n| call(what, n).1));
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Core host calls

/// Loops over one import `n` times; `open` opens `4k.bin` in the first preopen.
const CORE_WAT: &str = r#"
(module
  (import "bench" "noop" (func $noop))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread"
    (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "4k.bin")
  (func (export "empty") (param $n i32) (result i32)
    (loop $l
      (if (local.get $n)
        (then (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l))))
    (i32.const 0))
  (func (export "noop") (param $n i32) (result i32)
    (loop $l
      (if (local.get $n)
        (then
          (call $noop)
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $l))))
    (i32.const 0))
  (func (export "clock") (param $n i32) (result i32)
    (local $err i32)
    (loop $l
      (if (local.get $n)
        (then
          (local.set $err (i32.or (local.get $err)
            (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 64))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $l))))
    (local.get $err))
  (func (export "open") (result i32)
    (local $err i32)
    ;; dirfd 3, no lookup flags, path "4k.bin", no oflags, rights fd_read|fd_seek
    (local.set $err (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 6)
      (i32.const 0) (i64.const 6) (i64.const 0) (i32.const 0) (i32.const 64)))
    (if (local.get $err) (then (return (i32.sub (i32.const 0) (local.get $err)))))
    (i32.load (i32.const 64)))
  (func (export "pread") (param $fd i32) (param $n i32) (result i32)
    (local $err i32)
    ;; one iovec at 16: 4096 bytes at 4096; the count read at 32
    (i32.store (i32.const 16) (i32.const 4096))
    (i32.store (i32.const 20) (i32.const 4096))
    (loop $l
      (if (local.get $n)
        (then
          (local.set $err (i32.or (local.get $err)
            (call $fd_pread (local.get $fd) (i32.const 16) (i32.const 1) (i64.const 0)
              (i32.const 32))))
          (if (i32.ne (i32.load (i32.const 32)) (i32.const 4096))
            (then (local.set $err (i32.const 255))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $l))))
    (local.get $err))
)
"#;

#[inline(never)]
fn native_noop() {
    black_box(());
}

fn hostcall_core(c: &mut Criterion) {
    let warden = Warden::new(EngineSettings::default()).expect("engine");
    let engine = warden.engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("4k.bin");
    std::fs::write(&file, vec![0x5a; 4096]).expect("write 4k.bin");

    let mut linker = wasmtime::Linker::<WasiP1Ctx>::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| c).expect("link WASI");
    linker.func_wrap("bench", "noop", || {}).expect("link noop");
    let wasm = wat::parse_str(CORE_WAT).expect("wat");
    let module = wasmtime::Module::new(engine, wasm).expect("compile");
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_blocking_current_thread(true)
        .preopened_dir(dir.path(), "/data", FsPerms::ReadOnly)
        .expect("preopen");
    let mut store = Store::new(engine, wasi.build_p1());
    epochs_like_warden(&mut store);
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiate");
    let fd = instance
        .get_typed_func::<(), i32>(&mut store, "open")
        .expect("open")
        .call(&mut store, ())
        .expect("call open");
    assert!(fd > 0, "path_open failed: errno {}", -fd);
    let loops: Vec<_> = ["empty", "noop", "clock"]
        .iter()
        .map(|name| {
            let f = instance
                .get_typed_func::<i32, i32>(&mut store, name)
                .expect("export");
            (*name, f)
        })
        .collect();
    let pread = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "pread")
        .expect("pread");

    let mut g = group(c, "hostcall-core", SamplingMode::Auto);
    for (name, f) in &loops {
        g.bench_function(format!("wasm {name}"), |b| {
            b.iter_custom(|n| {
                let n = i32::try_from(n).expect("fewer than 2^31 calls");
                let started = Instant::now();
                let err = f.call(&mut store, n).expect("call");
                let elapsed = started.elapsed();
                assert_eq!(err, 0, "{name} failed");
                elapsed
            })
        });
    }
    g.bench_function("wasm fd_pread 4KiB", |b| {
        b.iter_custom(|n| {
            let n = i32::try_from(n).expect("fewer than 2^31 calls");
            let started = Instant::now();
            let err = pread.call(&mut store, (fd, n)).expect("call");
            let elapsed = started.elapsed();
            assert_eq!(err, 0, "fd_pread failed");
            elapsed
        })
    });
    g.bench_function("native noop call", |b| b.iter(native_noop));
    g.bench_function("native clock_gettime", |b| b.iter(Instant::now));
    let native_file = std::fs::File::open(&file).expect("open");
    let mut buf = vec![0u8; 4096];
    g.bench_function("native pread 4KiB", |b| {
        b.iter(|| {
            use std::os::unix::fs::FileExt;
            let n = native_file.read_at(&mut buf, 0).expect("pread");
            assert_eq!(n, 4096);
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// A whole-file read through warden's run path

fn file_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("4k.bin"), vec![0x5a; 4096]).expect("write");
    let manifest = format!(
        "[identity]\nname = \"bench-file-read\"\n\n\
         [[files]]\nhost = {:?}\nguest = \"/data\"\naccess = \"read\"\n\n\
         [limits]\nwall = \"10m\"\n",
        data.display().to_string()
    );
    let manifest =
        Manifest::from_str_at(&manifest, Path::new("<bench>"), dir.path()).expect("the manifest");
    let mut policy = Policy::from_manifest(manifest);
    policy.module = Some(guests::BENCH_TWINS_P1.into());
    let warden = Warden::new(EngineSettings::default()).expect("engine");
    let workload = warden.load(policy).expect("load");
    let host_file = data.join("4k.bin").to_string_lossy().into_owned();

    let mut g = group(c, "file-read-4KiB", SamplingMode::Linear);
    g.sample_size(10);
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            support::run_process(
                native_twins(),
                &args(&["readmany", &host_file], Some(n)),
                None,
            )
        })
    });
    g.bench_function("wasm (warden)", |b| {
        b.iter_custom(|n| {
            support::run_wasm(
                &workload,
                &args(&["readmany", "/data/4k.bin"], Some(n)),
                Input::Null,
            )
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// HTTP to loopback

/// The loopback server's one answer.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// An HTTP/1.1 server on 127.0.0.1 that answers every request with [`RESPONSE`] and closes
/// the connection, one connection at a time. Stopped when dropped.
struct LoopbackServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    /// The head of the last request whose path starts with `/v1/`.
    last_v1: Arc<std::sync::Mutex<String>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    fn start() -> LoopbackServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let last_v1 = Arc::new(std::sync::Mutex::new(String::new()));
        let (s, n, l) = (stop.clone(), served.clone(), last_v1.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_nodelay(true);
                let mut head = Vec::with_capacity(512);
                let mut buf = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                if conn.write_all(RESPONSE).is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                if head.starts_with(b"GET /v1/") {
                    *l.lock().unwrap_or_else(|p| p.into_inner()) =
                        String::from_utf8_lossy(&head).into_owned();
                }
            }
        });
        LoopbackServer {
            addr,
            stop,
            served,
            last_v1,
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop up so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One GET on a fresh connection with hyper's HTTP/1 client, as warden's broker makes it;
/// the response body.
async fn host_get(addr: SocketAddr, path: &str) -> Bytes {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await
            .expect("handshake");
    let driver = tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    drop(driver);
    body
}

fn http_workload(warden: &Warden, server: SocketAddr, secret: Option<&Path>) -> Workload {
    let mut manifest = format!(
        "[identity]\nname = \"bench-http\"\n\n\
         [[http]]\nurl = \"http://{server}/\"\nmethods = [\"GET\"]\n\n\
         [limits]\nwall = \"10m\"\noutput = \"1GiB\"\nhttp-requests = 100000000\n\
         egress = \"16GiB\"\n"
    );
    if let Some(key) = secret {
        manifest.push_str(&format!(
            "\n[secrets.bench]\nfrom = \"file:{}\"\n\
             inject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\", \
             url = \"http://{server}/v1/\" }}\n",
            key.display()
        ));
    }
    let manifest =
        Manifest::from_str_at(&manifest, Path::new("<bench>"), Path::new("/")).expect("manifest");
    let mut policy = Policy::from_manifest(manifest);
    policy.module = Some(guests::NET_PROBE_P2.into());
    warden.load(policy).expect("load net-probe")
}

/// Runs `workload` making `k` requests described by `step`; the time of the run. Checks that
/// every request got the server's answer.
fn run_requests(workload: &Workload, step: &str, k: u64) -> Duration {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = vec![format!("repeat {k}"), step.to_string()];
    let (out, err) = opts.capture_output();
    let started = Instant::now();
    let report = workload.run(opts).expect("run");
    let elapsed = started.elapsed();
    let text = out.text();
    let ok = text.lines().filter(|l| *l == "http: 200 ok").count() as u64;
    assert!(
        ok == k,
        "{ok} of {k} requests answered: {:?} {}",
        text.lines().find(|l| *l != "http: 200 ok"),
        err.text()
    );
    assert_eq!(report.outcome, warden::Outcome::Exited(0));
    elapsed
}

/// wasmtime-wasi-http's own hooks (its `default-send-request`): no rules, no limits, no
/// secrets, no redaction; the request is sent as wasmtime-wasi-http sends it.
struct DefaultHooks;

impl wasmtime_wasi_http::WasiHttpHooks for DefaultHooks {}

/// The state of a `net-probe` run with wasmtime-wasi-http's default hooks.
struct DefaultHttpHost {
    wasi: WasiCtx,
    table: ResourceTable,
    http: wasmtime_wasi_http::WasiHttpCtx,
    hooks: DefaultHooks,
    /// `net-probe` imports `warden:host/secrets` (no secret here; the `http` step does not
    /// call it).
    secrets: SecretsCtx,
}

impl WasiView for DefaultHttpHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for DefaultHttpHost {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// `net-probe` linked with WASI preview 2 and `wasi:http` with the default hooks, on warden's
/// engine.
fn default_http_command(engine: &Engine) -> CommandPre<DefaultHttpHost> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).expect("wasi:http");
    warden::secrets::add_to_linker(&mut linker, |h: &mut DefaultHttpHost| SecretsView {
        ctx: &h.secrets,
        table: &mut h.table,
    })
    .expect("warden:host/secrets");
    let component = Component::from_file(engine, guests::NET_PROBE_P2).expect("net-probe");
    let pre = linker.instantiate_pre(&component).expect("instantiate_pre");
    CommandPre::new(pre).expect("a command")
}

/// [`run_requests`] for the default hooks: the same guest and step, on a thread of its own as
/// a warden run is, without warden.
fn run_requests_default(pre: &CommandPre<DefaultHttpHost>, step: &str, k: u64) -> Duration {
    let pre = pre.clone();
    let step = step.to_owned();
    std::thread::spawn(move || {
        let stdout = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(usize::MAX);
        let wasi = WasiCtxBuilder::new()
            .args(&["net-probe".to_owned(), format!("repeat {k}"), step])
            .stdout(stdout.clone())
            .build();
        let mut store = Store::new(
            pre.engine(),
            DefaultHttpHost {
                wasi,
                table: ResourceTable::new(),
                http: wasmtime_wasi_http::WasiHttpCtx::new(),
                hooks: DefaultHooks,
                secrets: SecretsCtx {
                    secrets: Arc::new(Secrets::default()),
                    audit: Audit::new(AuditSink::disabled(), "bench"),
                },
            },
        );
        epochs_like_warden(&mut store);
        let started = Instant::now();
        let command = pre.instantiate(&mut store).expect("instantiate");
        let exit = command.wasi_cli_run().call_run(&mut store).expect("run");
        let elapsed = started.elapsed();
        assert_eq!(exit, Ok(()));
        let out = stdout.contents();
        let text = String::from_utf8_lossy(&out);
        let ok = text.lines().filter(|l| *l == "http: 200 ok").count() as u64;
        assert!(
            ok == k,
            "{ok} of {k} requests answered: {:?}",
            text.lines().next()
        );
        elapsed
    })
    .join()
    .expect("the run thread")
}

fn http_loopback(c: &mut Criterion) {
    let server = LoopbackServer::start();
    let addr = server.addr;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, "bench-http-key-0123456789").expect("write the key");
    let warden = Warden::new(EngineSettings::default()).expect("engine");
    let plain = http_workload(&warden, addr, None);
    let with_secret = http_workload(&warden, addr, Some(&key));
    let plain_step = format!("http GET http://{addr}/plain");
    let secret_step = format!("http-secret GET http://{addr}/v1/items bench");

    // The secret reaches the server, through warden only.
    run_requests(&with_secret, &secret_step, 1);
    let head = server
        .last_v1
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(
        head.contains("Bearer bench-http-key-0123456789"),
        "no injected secret in {head:?}"
    );

    let mut g = group(c, "http-loopback", SamplingMode::Linear);
    g.sample_size(10);
    g.bench_function("host (hyper, no checks)", |b| {
        b.iter_custom(|k| {
            let started = Instant::now();
            wasmtime_wasi::runtime::in_tokio(async {
                for _ in 0..k {
                    let body = host_get(addr, "/plain").await;
                    assert_eq!(&body[..], b"ok");
                }
            });
            started.elapsed()
        })
    });
    let default_hooks = default_http_command(warden.engine());
    g.bench_function("wasi-http default hooks (no checks)", |b| {
        b.iter_custom(|k| run_requests_default(&default_hooks, &plain_step, k))
    });
    g.bench_function("warden", |b| {
        b.iter_custom(|k| run_requests(&plain, &plain_step, k))
    });
    g.bench_function("warden, secret injected", |b| {
        b.iter_custom(|k| run_requests(&with_secret, &secret_step, k))
    });
    g.finish();
    eprintln!(
        "http-loopback: the server answered {} requests",
        server.served.load(Ordering::Relaxed)
    );
    drop(server);
}

criterion_group!(
    benches,
    hostcall_component,
    hostcall_core,
    file_read,
    http_loopback,
    density::density
);
criterion_main!(benches);
