//! The peers' servers, started by this program from Debian's packages and stopped by it.
//!
//! Each server gets its own data directory under `target/peers-data/` (the same disk as weir's
//! directories), listens on 127.0.0.1 on a free port, and runs in its own process group. They
//! are stopped when the [`Servers`] value drops, when the program is interrupted (SIGINT,
//! SIGTERM: a signal handler kills the groups), and when it panics (the value drops while
//! unwinding). Each child also gets `PR_SET_PDEATHSIG`, and the groups' ids are written to a
//! pid file that the next run reads, so even a `kill -9` of this program leaves nothing behind
//! for long. A server that cannot start is an error the report shows, never a silent skip.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Process groups to kill from the signal handler (0: free slot).
static GROUPS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

fn register_group(pgid: i32) {
    for slot in &GROUPS {
        if slot.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return;
        }
    }
}

fn unregister_group(pgid: i32) {
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill(2) is async-signal-safe; a negative id names the whole group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    // SAFETY: _exit(2) is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(128 + signal) };
}

/// Installs the SIGINT/SIGTERM handler that kills every server's process group.
pub fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only calls async-signal-safe functions (kill, _exit) and reads
        // atomics.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

/// A free TCP port on loopback (the kernel's choice; free when this returns).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `peers/install.sh`, which installs the missing packages with apt-get.
pub fn install_packages() -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh");
    let status =
        Command::new("bash").arg(&script).status().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", script.display()))
    }
}

/// One running server.
pub struct Server {
    pub name: &'static str,
    child: Child,
    /// Extra processes it needs (RabbitMQ's epmd).
    helpers: Vec<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub version: String,
    /// The signal that shuts it down cleanly.
    stop_signal: i32,
}

impl Server {
    /// A server that is one process (group) with no helpers, stopped by `stop_signal`.
    fn single(name: &'static str, child: Child, port: u16, dir: &Path, version: String, stop_signal: i32) -> Server {
        Server { name, child, helpers: Vec::new(), port, data_dir: dir.to_path_buf(), version, stop_signal }
    }

    fn pgids(&self) -> Vec<i32> {
        std::iter::once(&self.child).chain(&self.helpers).map(|c| c.id() as i32).collect()
    }

    fn stop(&mut self) {
        let started = Instant::now();
        // SAFETY: signals to process groups this program created.
        unsafe { libc::kill(-(self.child.id() as i32), self.stop_signal) };
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for pgid in self.pgids() {
            // SAFETY: as above; whatever is left of the group goes now.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            unregister_group(pgid);
        }
        let _ = self.child.wait();
        for h in &mut self.helpers {
            let _ = h.wait();
        }
    }
}

/// The servers of one run; stops them all when dropped.
pub struct Servers {
    pub root: PathBuf,
    pub running: Vec<Server>,
    pid_file: PathBuf,
}

impl Servers {
    /// Ends what an earlier, killed run left behind, and prepares `root`.
    pub fn new(root: &Path) -> Servers {
        let pid_file = root.join("pids");
        kill_leftovers(&pid_file, root);
        let _ = fs::create_dir_all(root);
        Servers { root: root.to_path_buf(), running: Vec::new(), pid_file }
    }

    pub fn get(&self, name: &str) -> Option<&Server> {
        self.running.iter().find(|s| s.name == name)
    }

    fn add(&mut self, server: Server) {
        let mut line = String::new();
        for pgid in server.pgids() {
            line.push_str(&format!("{pgid}\n"));
        }
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&self.pid_file) {
            let _ = f.write_all(line.as_bytes());
        }
        self.running.push(server);
    }

    /// Starts PostgreSQL; Err says why it could not.
    pub fn start_postgres(&mut self) -> Result<(), String> {
        let server = start_postgres(&self.root.join("postgres"))?;
        self.add(server);
        Ok(())
    }

    pub fn start_rabbitmq(&mut self) -> Result<(), String> {
        let server = start_rabbitmq(&self.root.join("rabbitmq"))?;
        self.add(server);
        Ok(())
    }

    pub fn start_nats(&mut self) -> Result<(), String> {
        let server = start_nats(&self.root.join("nats"))?;
        self.add(server);
        Ok(())
    }

    pub fn start_mosquitto(&mut self) -> Result<(), String> {
        let server = start_mosquitto(&self.root.join("mosquitto"))?;
        self.add(server);
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for mut s in self.running.drain(..) {
            eprintln!("peers: stopping {}", s.name);
            s.stop();
            let _ = fs::remove_dir_all(&s.data_dir);
        }
        let _ = fs::remove_file(&self.pid_file);
    }
}

/// Kills the process groups a previous run recorded, if they still run from under `root`.
fn kill_leftovers(pid_file: &Path, root: &Path) {
    let Ok(text) = fs::read_to_string(pid_file) else { return };
    let root_text = root.canonicalize().unwrap_or_else(|_| root.to_path_buf()).display().to_string();
    for pgid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()).filter(|p| *p > 1) {
        let cmdline = fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let environ = fs::read(format!("/proc/{pgid}/environ")).unwrap_or_default();
        let ours = cmdline.contains(&root_text) || String::from_utf8_lossy(&environ).contains(&root_text);
        if ours {
            eprintln!("peers: ending process group {pgid} left by an earlier run");
            // SAFETY: a process group recorded by an earlier run of this program, checked above
            // to still run from under our data root.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    let _ = fs::remove_file(pid_file);
}

/// A fresh, empty directory.
fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Spawns `cmd` in its own process group, with output to `log`, killed if this program dies.
fn spawn(mut cmd: Command, log: &Path, name: &str) -> Result<Child, String> {
    let out = fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    // SAFETY: prctl(2) is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("{name}: cannot start {:?}: {e}", cmd.get_program()))?;
    register_group(child.id() as i32);
    Ok(child)
}

/// Polls `ready` until it succeeds, the child exits, or `limit` passes.
fn wait_ready(
    child: &mut Child,
    log: &Path,
    name: &str,
    limit: Duration,
    ready: impl Fn() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited while starting ({status}); {}", log_tail(log)));
        }
        if started.elapsed() > limit {
            return Err(format!("{name} not ready after {} s; {}", limit.as_secs(), log_tail(log)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(4).collect();
    format!("last lines of {}: {}", log.display(), lines.into_iter().rev().collect::<Vec<_>>().join(" | "))
}

fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let text = fs::read_to_string("/etc/passwd").map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == user {
            let uid = f[2].parse().map_err(|_| format!("bad uid of {user}"))?;
            let gid = f[3].parse().map_err(|_| format!("bad gid of {user}"))?;
            return Ok((uid, gid));
        }
    }
    Err(format!("no user {user:?} (is the package installed?)"))
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| format!("cannot chown {}: {e}", dir.display()))
}

/// The command's first output line (a version string).
fn version_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

// ----- PostgreSQL -----

/// PostgreSQL's settings for the run, as stated in the report: the strongest durability
/// (every commit waits for its WAL fsync) and the usual throughput settings around it.
pub const POSTGRES_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
    ("wal_sync_method", "fdatasync"),
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    ("wal_buffers", "64MB"),
    ("max_wal_size", "8GB"),
    ("checkpoint_timeout", "30min"),
    ("shared_buffers", "1GB"),
    ("max_connections", "200"),
    ("commit_delay", "0"),
    ("huge_pages", "off"),
];

fn postgres_bin() -> Result<PathBuf, String> {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = fs::read_dir(base)
        .map_err(|e| format!("no PostgreSQL server under {}: {e}", base.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|v: &u32| base.join(v.to_string()).join("bin/postgres").exists())
        .collect();
    versions.sort();
    let v = versions.pop().ok_or_else(|| format!("no PostgreSQL server binary under {}", base.display()))?;
    Ok(base.join(v.to_string()).join("bin"))
}

fn start_postgres(dir: &Path) -> Result<Server, String> {
    let bin = postgres_bin()?;
    let (uid, gid) = user_ids("postgres")?;
    fresh_dir(dir)?;
    let data = dir.join("data");
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    chown_tree(dir, uid, gid)?;
    chown_tree(&data, uid, gid)?;
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    let init = Command::new(bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions", "--no-sync"])
        .uid(uid)
        .gid(gid)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("postgres: cannot run initdb: {e}"))?;
    if !init.status.success() {
        return Err(format!("postgres: initdb failed: {}", String::from_utf8_lossy(&init.stderr).trim()));
    }
    let port = free_port().map_err(|e| format!("postgres: no free port: {e}"))?;
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D").arg(&data).uid(uid).gid(gid).current_dir(dir);
    cmd.args(["-c", "listen_addresses=127.0.0.1", "-c", &format!("port={port}"), "-c", "unix_socket_directories="]);
    for (k, v) in POSTGRES_SETTINGS {
        cmd.args(["-c", &format!("{k}={v}")]);
    }
    let log = dir.join("postgres.log");
    let mut child = spawn(cmd, &log, "postgres")?;
    let conninfo = postgres_conninfo(port);
    wait_ready(&mut child, &log, "postgres", Duration::from_secs(60), || {
        postgres::Client::connect(&conninfo, postgres::NoTls).is_ok()
    })?;
    let version = version_of(bin.join("postgres").to_str().unwrap_or("postgres"), &["--version"]);
    Ok(Server::single("postgres", child, port, dir, version, libc::SIGINT))
}

/// The connection string of the started server.
pub fn postgres_conninfo(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=10")
}

// ----- RabbitMQ -----

fn start_rabbitmq(dir: &Path) -> Result<Server, String> {
    let server_script = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if !server_script.exists() {
        return Err(format!("rabbitmq: {} not found", server_script.display()));
    }
    fresh_dir(dir)?;
    let (amqp, dist, epmd_port) = (free_port(), free_port(), free_port());
    let (amqp, dist, epmd_port) = match (amqp, dist, epmd_port) {
        (Ok(a), Ok(d), Ok(e)) if a != d && d != e && a != e => (a, d, e),
        _ => return Err("rabbitmq: no three distinct free ports".into()),
    };
    let write = |name: &str, text: String| {
        fs::write(dir.join(name), text).map_err(|e| format!("rabbitmq: cannot write {name}: {e}"))
    };
    write(
        "rabbitmq.conf",
        format!(
            "listeners.tcp.default = 127.0.0.1:{amqp}\n\
             loopback_users.guest = true\n\
             disk_free_limit.absolute = 1GB\n\
             vm_memory_high_watermark.relative = 0.4\n\
             log.console = true\n\
             log.file = false\n"
        ),
    )?;
    write("enabled_plugins", "[].\n".into())?;
    write("rabbitmq-env.conf", String::new())?;
    let cookie = dir.join(".erlang.cookie");
    write(".erlang.cookie", "WEIRPEERSBENCHCOOKIE".into())?;
    fs::set_permissions(&cookie, fs::Permissions::from_mode(0o400)).map_err(|e| e.to_string())?;

    // Our own epmd on its own port (RabbitMQ would otherwise start a daemon that outlives us).
    let mut epmd = Command::new("epmd");
    epmd.args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"]).env("HOME", dir);
    let epmd_log = dir.join("epmd.log");
    let epmd_child = spawn(epmd, &epmd_log, "epmd")?;

    let mut cmd = Command::new(server_script);
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODENAME", "weirpeers@localhost")
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", amqp.to_string())
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
        .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"));
    let log = dir.join("rabbitmq.log");
    let mut child = match spawn(cmd, &log, "rabbitmq") {
        Ok(c) => c,
        Err(e) => {
            let mut epmd_child = epmd_child;
            // SAFETY: the group this program just created.
            unsafe { libc::kill(-(epmd_child.id() as i32), libc::SIGKILL) };
            let _ = epmd_child.wait();
            return Err(e);
        }
    };
    let mut server = Server {
        name: "rabbitmq",
        child: Command::new("true").spawn().map_err(|e| e.to_string())?,
        helpers: vec![epmd_child],
        port: amqp,
        data_dir: dir.to_path_buf(),
        version: String::new(),
        stop_signal: libc::SIGTERM,
    };
    // Until it is ready, a failure must still stop epmd and the half-started node.
    let ready = wait_ready(&mut child, &log, "rabbitmq", Duration::from_secs(120), || amqp_ready(amqp));
    let placeholder = std::mem::replace(&mut server.child, child);
    drop(placeholder);
    if let Err(e) = ready {
        server.stop();
        return Err(e);
    }
    server.version = fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.split_once("RabbitMQ ").map(|(_, v)| v.split_whitespace().next().unwrap_or("").to_string()))
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(|v| format!("RabbitMQ {v}"))
        .unwrap_or_else(|| "RabbitMQ (version not in its log)".into());
    Ok(server)
}

/// Whether an AMQP listener answers the protocol header with a Connection.Start frame.
fn amqp_ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut frame = [0u8; 7];
    s.read_exact(&mut frame).is_ok() && frame[0] == 1
}

// ----- NATS -----

/// Whether this nats-server accepts `jetstream { sync_interval: always }` (fsync every write,
/// in versions that have it), found by asking the binary to check such a configuration.
pub fn nats_can_sync_always(dir: &Path) -> bool {
    let conf = dir.join("probe.conf");
    let text = format!(
        "listen: 127.0.0.1:-1\njetstream {{ store_dir: \"{}\", sync_interval: always }}\n",
        dir.join("probe-js").display()
    );
    if fs::write(&conf, text).is_err() {
        return false;
    }
    Command::new("nats-server").arg("-c").arg(&conf).arg("-t").output().map(|o| o.status.success()).unwrap_or(false)
}

fn start_nats(dir: &Path) -> Result<Server, String> {
    fresh_dir(dir)?;
    let port = free_port().map_err(|e| format!("nats: no free port: {e}"))?;
    let sync = if nats_can_sync_always(dir) { "  sync_interval: always\n" } else { "" };
    let conf = dir.join("nats.conf");
    let text = format!(
        "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 1GB\n  max_file_store: 64GB\n{sync}}}\n",
        dir.join("jetstream").display()
    );
    fs::write(&conf, text).map_err(|e| format!("nats: cannot write its config: {e}"))?;
    let mut cmd = Command::new("nats-server");
    cmd.arg("-c").arg(&conf).current_dir(dir);
    let log = dir.join("nats.log");
    let mut child = spawn(cmd, &log, "nats")?;
    wait_ready(&mut child, &log, "nats", Duration::from_secs(30), || {
        let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).is_ok()
            && line.starts_with("INFO")
            && line.contains("\"jetstream\":true")
    })?;
    let version = version_of("nats-server", &["--version"]);
    Ok(Server::single("nats", child, port, dir, version, libc::SIGTERM))
}

// ----- Mosquitto -----

/// Mosquitto's settings for the run, as stated in the report. `persistence true` keeps an
/// in-memory store that is written to `mosquitto.db` every `autosave_interval` seconds and at
/// shutdown, never per message: a PUBACK means the message is in the broker's memory.
/// `max_queued_messages 0` (no limit) so that nothing is dropped for a subscriber that falls
/// behind (the default, 1,000, drops QoS 1 messages silently beyond it); `max_inflight_messages`
/// as the other brokers' prefetch.
pub const MOSQUITTO_SETTINGS: &[(&str, &str)] = &[
    ("persistence", "true"),
    ("autosave_interval", "1800"),
    ("autosave_on_changes", "false"),
    ("max_queued_messages", "0"),
    ("max_inflight_messages", "100"),
    ("allow_anonymous", "true"),
];

fn start_mosquitto(dir: &Path) -> Result<Server, String> {
    fresh_dir(dir)?;
    let port = free_port().map_err(|e| format!("mosquitto: no free port: {e}"))?;
    // Started as root, mosquitto drops to its own user, which must own the persistence dir.
    let user = match user_ids("mosquitto") {
        Ok((uid, gid)) => {
            chown_tree(dir, uid, gid)?;
            "mosquitto"
        }
        Err(_) => "root",
    };
    let mut text = format!(
        "listener {port} 127.0.0.1\nuser {user}\npersistence_location {}/\npersistence_file mosquitto.db\nlog_dest stdout\nlog_type error\nlog_type warning\n",
        dir.display()
    );
    for (k, v) in MOSQUITTO_SETTINGS {
        text.push_str(&format!("{k} {v}\n"));
    }
    let conf = dir.join("mosquitto.conf");
    fs::write(&conf, text).map_err(|e| format!("mosquitto: cannot write its config: {e}"))?;
    let mut cmd = Command::new("mosquitto");
    cmd.arg("-c").arg(&conf).current_dir(dir);
    let log = dir.join("mosquitto.log");
    let mut child = spawn(cmd, &log, "mosquitto")?;
    wait_ready(&mut child, &log, "mosquitto", Duration::from_secs(30), || mqtt_ready(port))?;
    let version = version_of("mosquitto", &["-h"]);
    Ok(Server::single("mosquitto", child, port, dir, version, libc::SIGTERM))
}

/// Whether an MQTT listener accepts a CONNECT (3.1.1, clean session, empty client id).
fn mqtt_ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let connect = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0];
    if s.write_all(&connect).is_err() {
        return false;
    }
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).is_ok() && connack == [0x20, 2, 0, 0]
}
