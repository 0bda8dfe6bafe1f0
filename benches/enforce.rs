//! Time to put 10,000 addresses into the kernel and take them out again through the ipset path (one
//! `ipset restore` batch), inside a network namespace this bench creates and removes. Needs root.
//!
//! Run: `cargo bench --no-default-features --bench enforce` (or `make bench`).

use std::process::Command;
use std::time::Instant;

use ipnet::IpNet;
use netwarden::enforce::{Enforcer, SystemRunner};

fn main() {
    let ns = format!("nwbench{}", std::process::id());
    let created = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        eprintln!("cannot create a network namespace (needs root); enforcement bench skipped");
        return;
    }
    let enforcer = Enforcer::new(Box::new(SystemRunner::in_netns(&ns)));
    let nets: Vec<(IpNet, Option<u64>)> = (0..10_000u32)
        .map(|i| {
            (
                IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(0xc612_0000 + i))),
                None,
            )
        })
        .collect();
    let result = (|| -> Result<(f64, f64, usize), String> {
        enforcer.ensure_setup().map_err(|e| e.to_string())?;
        let start = Instant::now();
        enforcer.block(&nets).map_err(|e| e.to_string())?;
        let add = start.elapsed().as_secs_f64();
        let held = enforcer.kernel_entries().map_err(|e| e.to_string())?.len();
        let only: Vec<IpNet> = nets.iter().map(|(n, _)| *n).collect();
        let start = Instant::now();
        enforcer.unblock(&only).map_err(|e| e.to_string())?;
        Ok((add, start.elapsed().as_secs_f64(), held))
    })();
    enforcer.flush().ok();
    Command::new("ip").args(["netns", "del", &ns]).status().ok();
    match result {
        Ok((add, remove, held)) => {
            println!(
                "ipset path: enforced 10,000 addresses in {add:.3} s (kernel holds {held}), removed them in {remove:.3} s (target: < 2 s)"
            );
        }
        Err(e) => eprintln!("enforcement bench failed: {e}"),
    }
}
