//! Step container hardening (RELIABILITY S12, DESIGN §5.2), seen from both sides: inspected from
//! outside through the Docker API while the step runs, and probed from inside by the step itself
//! (its cgroup limits read from cgroup v2 files, or v1's where the engine uses those).

use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;

use crate::helpers::{assert_logged, assert_status, spawn_stack};

/// Prints what a process in the container can see and do, then waits to be inspected.
const PROBE: &str = r#"actions:
  default:
    run: |
      echo "uid=$(id -u) gid=$(id -g)"
      grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status | tr -d ' \t'
      if touch /probe-root 2>/dev/null; then echo "root fs: writable"; else echo "root fs: read-only"; fi
      if [ -e /var/run/docker.sock ] || [ -e /run/docker.sock ]; then echo "docker socket: present"; else echo "docker socket: absent"; fi
      cg=/sys/fs/cgroup
      echo "memory limit=$(cat $cg/memory.max 2>/dev/null || cat $cg/memory/memory.limit_in_bytes)"
      echo "pids limit=$(cat $cg/pids.max 2>/dev/null || cat $cg/pids/pids.max)"
      if [ -e $cg/cpu.max ]; then set -- $(cat $cg/cpu.max); else set -- $(cat $cg/cpu/cpu.cfs_quota_us) $(cat $cg/cpu/cpu.cfs_period_us); fi
      echo "cpu quota=$1 period=$2"
      if env | grep -qE '^GANTRY_(DATABASE|API|ENCRYPTION|AMQP)'; then echo "worker env: leaked"; else echo "worker env: absent"; fi
      sleep 3
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_container_is_hardened_as_seen_from_outside_and_from_inside() {
    let mut stack = spawn_stack().await;
    stack.project_with_manifest(PROBE).await;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let worker = stack.settings.worker.clone();

    let change_id = stack.create_change("default", "main").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        if let Some(name) = stack.containers_of(&change_id).await.pop() {
            break name;
        }
        assert!(Instant::now() < deadline, "the step container never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let inspected = docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let change = stack.wait_final(&change_id).await;

    assert_status(&stack, &change_id, &change, "success").await;
    let config = inspected.config.unwrap();
    let host = inspected.host_config.unwrap();
    assert_eq!(config.user.as_deref(), Some("10001:10001"));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.cap_add, None);
    assert_eq!(host.privileged, Some(false));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.memory, Some(worker.memory_bytes));
    assert_eq!(
        host.memory_swap,
        Some(worker.memory_bytes),
        "no swap beyond the limit"
    );
    assert_eq!(host.nano_cpus, Some(worker.nano_cpus));
    assert_eq!(host.pids_limit, Some(worker.pids_limit));
    assert!(
        host.binds.unwrap_or_default().is_empty(),
        "no host paths are mounted"
    );
    let env = config.env.unwrap_or_default();
    assert!(
        !env.iter()
            .any(|e| e.starts_with("GANTRY_DATABASE") || e.starts_with("GANTRY_API")),
        "{env:?}"
    );

    let log = stack.log(&change_id).await;
    for seen in [
        "uid=10001 gid=10001",
        "CapEff:0000000000000000",
        "CapPrm:0000000000000000",
        "CapBnd:0000000000000000",
        "NoNewPrivs:1",
        "root fs: read-only",
        "docker socket: absent",
        &format!("memory limit={}", worker.memory_bytes),
        &format!("pids limit={}", worker.pids_limit),
        &format!("cpu quota={} period=100000", worker.nano_cpus / 10_000),
        "worker env: absent",
    ] {
        assert_logged(&log, seen);
    }
    stack.stop().await;
}
