//! End-to-end: pulling from a local OCI registry (Debian's
//! `docker-registry`) running in node 1's namespace, with `shoal image pull`
//! and the stock `docker pull`; plain HTTP only for a node started with
//! `--insecure-registry`.

use shoal_agent::images::ImageStore;
use shoal_netns_tests::{Node, World, registry::Registry, require_privileges, step};

#[test]
fn pull_from_a_local_registry() {
    require_privileges!();
    let mut world = World::new("registry", 3);
    world.node_mut(1).start();
    let registry_addr = format!("{}:5000", world.node(1).addr());
    world
        .node_mut(2)
        .start_with(&["--insecure-registry", &registry_addr]);
    world.node_mut(3).start();
    let (first, second, third) = (world.node(1), world.node(2), world.node(3));

    step("node 1 imports the demo image and pushes it to its registry");
    let id = first.import_demo_image();
    // Declared after the world: dropped (stopped) before its namespace goes.
    let registry = Registry::start(first, &first.data_dir().join("../registry"));
    assert_eq!(registry.addr(), registry_addr);
    let layout = first.data_dir().join("images");
    let digest = registry.push(&layout, "whoami:latest", "whoami", "latest");
    registry.push(&layout, "whoami:latest", "whoami", "v2");

    step("node 2 (--insecure-registry) pulls with shoal image pull");
    let reference = format!("{registry_addr}/whoami:latest");
    let pulled = second.shoal_ok(&["image", "pull", &reference]);
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{pulled}"
    );
    let listed = second.shoal_ok(&["image", "ls"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with(&format!("{registry_addr}/whoami ")))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains(" latest "), "{row}");
    assert!(
        row.contains(&id["sha256:".len().."sha256:".len() + 12]),
        "{row}"
    );
    let store = ImageStore::new(second.data_dir().join("images"));
    let rootfs = second.data_dir().join("../rootfs");
    let config = store.unpack(&reference, &rootfs).expect("unpack the pull");
    assert_eq!(config.cmd, ["/usr/local/bin/whoami"]);
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(rootfs.join("usr/local/bin/whoami").is_file());

    step("pulling again fetches nothing; by digest works too");
    let again = second.shoal_ok(&["image", "pull", &reference]);
    assert!(again.contains("Image is up to date"), "{again}");
    let pinned = format!("{registry_addr}/whoami@{digest}");
    second.shoal_ok(&["image", "pull", &pinned]);
    assert!(store.contains(&pinned).expect("contains"));

    step("a missing tag is a clear not-found error");
    let missing = second
        .shoal(&["image", "pull", &format!("{registry_addr}/whoami:nope")])
        .expect_err("no such tag");
    assert!(
        missing.contains(&format!(
            "manifest for {registry_addr}/whoami:nope not found: manifest unknown"
        )),
        "{missing}"
    );
    let missing = second
        .shoal(&["image", "pull", &format!("{registry_addr}/nothing")])
        .expect_err("no such repository");
    assert!(missing.contains("not found"), "{missing}");

    step("node 3 (no --insecure-registry) refuses plain HTTP, its store unchanged");
    let refused = third
        .shoal(&["image", "pull", &reference])
        .expect_err("plain HTTP");
    assert!(
        refused.contains(&format!(
            "registry {registry_addr} serves plain HTTP; start shoald with --insecure-registry {registry_addr}"
        )),
        "{refused}"
    );
    assert!(
        ImageStore::new(third.data_dir().join("images"))
            .list()
            .expect("list")
            .is_empty()
    );
    assert_eq!(third.shoal_ok(&["image", "ls"]).lines().count(), 1);

    docker_pulls(second, third, &registry);
}

/// `docker pull` / `docker images` with the stock docker CLI: node 2 pulls
/// the `v2` tag, node 3 refuses plain HTTP, a missing tag is not found.
fn docker_pulls(second: &Node, third: &Node, registry: &Registry) {
    let registry_addr = registry.addr();
    step("docker pull / docker images against node 2");
    let tagged = format!("{registry_addr}/whoami:v2");
    let Some(pulled) = second.docker(&["pull", &tagged]) else {
        eprintln!("skipped the docker part: no docker client installed");
        return;
    };
    let pulled = pulled.unwrap_or_else(|e| panic!("docker pull: {e}\n{}", registry.log()));
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {tagged}")),
        "{pulled}"
    );
    let images = second
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .expect("docker")
        .unwrap_or_else(|e| panic!("docker images: {e}"));
    assert!(images.lines().any(|l| l == tagged), "{images}");
    let refused = third
        .docker(&["pull", &tagged])
        .expect("docker")
        .expect_err("plain HTTP");
    assert!(refused.contains("--insecure-registry"), "{refused}");
    let missing = second
        .docker(&["pull", &format!("{registry_addr}/whoami:nope")])
        .expect("docker")
        .expect_err("no such tag");
    assert!(missing.contains("not found"), "{missing}");
}
