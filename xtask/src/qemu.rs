//! Stage 6: the VM. One pure function assembles the QEMU command line; the runner
//! streams the console to `console.log` and the results port to the caller as lines
//! arrive, enforces a watchdog, and notices a KVM that hangs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use guest_protocol::Settings;

use crate::util::{setup_error, Exit, Failure};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM when it works, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

/// Everything one boot needs.
#[derive(Clone, Debug)]
pub struct Vm {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    pub append: String,
    pub console_log: PathBuf,
    pub results_raw: PathBuf,
    pub timeout: Duration,
}

/// The QEMU command line. Each flag says why it is there.
pub fn command_line(vm: &Vm, kvm: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &[&str]| a.extend(s.iter().map(|x| x.to_string()));
    // No default devices: nothing we did not ask for (no NIC, no VGA, no monitor).
    push(&["-nodefaults", "-display", "none", "-monitor", "none"]);
    if kvm {
        // The host CPU's features, as the guest kernel would meet them on metal.
        push(&["-accel", "kvm", "-cpu", "host"]);
    } else {
        // Every feature TCG emulates, so the guest sees PCID, INVPCID, etc.
        push(&["-accel", "tcg", "-cpu", "max"]);
    }
    push(&[
        "-m",
        &vm.memory_mib.to_string(),
        "-smp",
        &vm.cpus.to_string(),
    ]);
    push(&[
        "-kernel",
        &vm.kernel.display().to_string(),
        "-initrd",
        &vm.initrd.display().to_string(),
    ]);
    // ttyS0: the kernel console, on QEMU's stdout, which the host reads live.
    push(&[
        "-chardev",
        "stdio,id=console,signal=off",
        "-serial",
        "chardev:console",
    ]);
    // ttyS1: the results port, never mixed with kernel messages.
    let res = format!("file,id=results,path={}", vm.results_raw.display());
    push(&["-chardev", &res, "-serial", "chardev:results"]);
    // A guest reboot (our init's last act, or panic=-1) ends QEMU.
    push(&["-no-reboot"]);
    push(&["-append", &vm.append]);
    a
}

/// The kernel command line: the console on ttyS0, reboot on panic, the init's
/// settings as `guest_protocol` encodes them (with `brd.rd_size` for the swap), then
/// `extra` (the target's and the user's `append`), which the kernel reads last and so
/// may override any of them.
pub fn append_line(guest: &Settings, extra: &str) -> Result<String> {
    let harness = guest
        .encode()
        .map_err(|e| setup_error(format!("kernel command line: {e}")))?;
    let mut s = format!("console=ttyS0 panic=-1 {harness}");
    let extra = extra.split_whitespace().collect::<Vec<_>>().join(" ");
    if !extra.is_empty() {
        s.push(' ');
        s.push_str(&extra);
    }
    Ok(s)
}

/// The QEMU binary: `XTASK_QEMU` overrides it (a wrapper, or the fault tests' fake
/// broken KVM).
pub fn qemu_binary() -> String {
    std::env::var("XTASK_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// The KVM device: `XTASK_KVM_DEVICE` overrides /dev/kvm (for the fault tests).
fn kvm_device() -> String {
    std::env::var("XTASK_KVM_DEVICE").unwrap_or_else(|_| "/dev/kvm".into())
}

/// Whether the KVM device can be opened read-write (necessary, not sufficient).
pub fn kvm_device_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(kvm_device())
        .is_ok()
}

/// The remembered outcome of a KVM probe for this boot of the host, per QEMU binary
/// and device.
fn probe_file(dir: &Path) -> PathBuf {
    let k = crate::util::Key::new("kvm-probe")
        .str("qemu", &qemu_binary())
        .str("dev", &kvm_device())
        .short();
    dir.join(format!("kvm-probe-{k}"))
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub fn remembered_kvm_broken(cache: &Path) -> Option<String> {
    let text = std::fs::read_to_string(probe_file(cache)).ok()?;
    let (id, why) = text.split_once('\n')?;
    (id == boot_id()).then(|| why.trim().to_string())
}

fn remember_kvm_broken(cache: &Path, why: &str) {
    let _ = std::fs::create_dir_all(cache);
    let _ = std::fs::write(probe_file(cache), format!("{}\n{why}\n", boot_id()));
}

/// How a boot ended.
#[derive(Debug)]
pub struct Outcome {
    pub kvm: bool,
    pub elapsed: Duration,
    /// The watchdog fired.
    pub timed_out: bool,
    pub status: Option<std::process::ExitStatus>,
    pub stderr: String,
}

enum Attempt {
    Done(Outcome),
    /// KVM printed nothing before the deadline.
    KvmSilent,
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots the VM. `on_result` sees each results-port line as it arrives.
pub fn run(
    vm: &Vm,
    accel: Accel,
    kvm_deadline: Duration,
    cache: &Path,
    on_result: &mut dyn FnMut(&str),
) -> Result<Outcome> {
    let try_kvm = match accel {
        Accel::Tcg => false,
        Accel::Kvm => {
            if !kvm_device_usable() {
                return Err(setup_error(format!(
                    "qemu: --accel kvm, but {} cannot be opened read-write",
                    kvm_device()
                )));
            }
            true
        }
        Accel::Auto => {
            if !kvm_device_usable() {
                eprintln!("    accel: /dev/kvm not usable, using TCG");
                false
            } else if let Some(why) = remembered_kvm_broken(cache) {
                eprintln!("    accel: KVM known broken on this host since boot ({why}); using TCG");
                false
            } else {
                true
            }
        }
    };
    if try_kvm {
        match attempt(vm, true, Some(kvm_deadline), on_result)? {
            Attempt::Done(o) => return Ok(o),
            Attempt::KvmSilent => {
                let why = format!(
                    "no console output within {} s under KVM",
                    kvm_deadline.as_secs()
                );
                if accel == Accel::Kvm {
                    return Err(Failure {
                        exit: Exit::Setup,
                        message: format!("qemu: --accel kvm: {why}; KVM does not work on this host (try --accel tcg)"),
                    }
                    .into());
                }
                eprintln!("    accel: {why}; /dev/kvm exists but does not run this guest: falling back to TCG");
                remember_kvm_broken(cache, &why);
            }
        }
    }
    match attempt(vm, false, None, on_result)? {
        Attempt::Done(o) => Ok(o),
        Attempt::KvmSilent => unreachable!("no deadline under TCG"),
    }
}

fn attempt(
    vm: &Vm,
    kvm: bool,
    first_output_deadline: Option<Duration>,
    on_result: &mut dyn FnMut(&str),
) -> Result<Attempt> {
    let _ = std::fs::remove_file(&vm.results_raw);
    std::fs::File::create(&vm.results_raw)?;
    let args = command_line(vm, kvm);
    eprintln!(
        "    {} {}",
        qemu_binary(),
        args.iter()
            .map(|a| if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let start = Instant::now();
    let child = Command::new(qemu_binary())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", qemu_binary()))?;
    let mut child = KillOnDrop(child);
    let mut stdout = child.0.stdout.take().expect("piped");
    let mut stderr = child.0.stderr.take().expect("piped");
    let seen_output = Arc::new(AtomicBool::new(false));
    let console_log = vm.console_log.clone();
    let seen = seen_output.clone();
    let console = std::thread::spawn(move || -> std::io::Result<()> {
        let mut f = std::fs::File::create(console_log)?;
        let mut buf = [0u8; 8192];
        loop {
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            seen.store(true, Ordering::Relaxed);
            f.write_all(&buf[..n])?;
        }
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut results = std::fs::File::open(&vm.results_raw)?;
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    let mut timed_out = false;
    let status = loop {
        // Drain the results port first, so that nothing is lost when QEMU exits.
        loop {
            let n = results.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let s = String::from_utf8_lossy(&line);
                on_result(s.trim_end_matches(['\n', '\r']));
            }
        }
        if let Some(st) = child.0.try_wait()? {
            // One last drain after exit.
            let mut rest = Vec::new();
            results.read_to_end(&mut rest)?;
            pending.extend_from_slice(&rest);
            for line in String::from_utf8_lossy(&pending)
                .split('\n')
                .filter(|l| !l.is_empty())
            {
                on_result(line.trim_end_matches('\r'));
            }
            break Some(st);
        }
        if let Some(d) = first_output_deadline {
            if !seen_output.load(Ordering::Relaxed) && start.elapsed() > d {
                drop(child);
                let _ = console.join();
                return Ok(Attempt::KvmSilent);
            }
        }
        if start.elapsed() > vm.timeout {
            timed_out = true;
            let _ = child.0.kill();
            break child.0.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = console.join();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Attempt::Done(Outcome {
        kvm,
        elapsed: start.elapsed(),
        timed_out,
        status,
        stderr,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> Vm {
        Vm {
            kernel: "/k/bzImage".into(),
            initrd: "/k/initramfs.cpio".into(),
            memory_mib: 2048,
            cpus: 2,
            append: append_line(
                &Settings {
                    suites: Some(vec!["soft-dirty".into(), "pagemap_ioctl".into()]),
                    timeout_s: 300,
                    hugepages: 64,
                    swap_mib: 0,
                    ..Settings::default()
                },
                "",
            )
            .unwrap(),
            console_log: "/r/console.log".into(),
            results_raw: "/r/results.raw".into(),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn command_line_has_the_protocol() {
        let tcg = command_line(&vm(), false);
        let s = tcg.join(" ");
        assert!(s.contains("-accel tcg -cpu max"));
        assert!(s.contains("-no-reboot"));
        assert!(s.contains("-serial chardev:console"));
        assert!(s.contains("path=/r/results.raw -serial chardev:results"));
        // Console first, results second: ttyS0 and ttyS1 in that order.
        let c = s.find("chardev:console").unwrap();
        let r = s.find("chardev:results").unwrap();
        assert!(c < r);
        let kvm = command_line(&vm(), true).join(" ");
        assert!(kvm.contains("-accel kvm -cpu host"));
        let append = tcg.last().unwrap();
        assert_eq!(
            append,
            "console=ttyS0 panic=-1 harness.suites=soft-dirty,pagemap_ioctl harness.timeout=300 harness.thp=always harness.hugepages=64 harness.swap=0"
        );
    }

    #[test]
    fn append_line_carries_the_protocol_and_the_ram_disk() {
        let guest = Settings {
            suites: Some(vec!["x".into()]),
            ..Settings::default()
        };
        let swap = append_line(&guest, "  quiet\n loglevel=3 ").unwrap();
        assert!(
            swap.ends_with("harness.swap=256 brd.rd_size=262144 quiet loglevel=3"),
            "{swap}"
        );
        // What the guest reads back is what was asked for.
        let back = guest_protocol::cmdline::parse(&swap);
        assert_eq!(back.settings, guest);
        assert!(back.diagnostics.is_empty(), "{:?}", back.diagnostics);
        let bad = Settings {
            suites: Some(vec!["a b".into()]),
            ..Settings::default()
        };
        let e = format!("{:#}", append_line(&bad, "").unwrap_err());
        assert!(e.contains("\"a b\"") && e.contains("harness.suites"), "{e}");
    }

    #[test]
    fn kvm_verdict_is_per_host_boot() {
        let d = tempfile::tempdir().unwrap();
        assert!(remembered_kvm_broken(d.path()).is_none());
        remember_kvm_broken(d.path(), "silent");
        assert_eq!(remembered_kvm_broken(d.path()).as_deref(), Some("silent"));
        std::fs::write(probe_file(d.path()), "another-boot\nsilent\n").unwrap();
        assert!(remembered_kvm_broken(d.path()).is_none());
    }
}
