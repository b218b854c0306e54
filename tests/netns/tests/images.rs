//! End-to-end: importing a root filesystem tarball into a node's image store
//! and listing it, through the `shoal` CLI and the stock docker CLI.

use std::process::Command;

use shoal_agent::images::ImageStore;
use shoal_netns_tests::{World, require_privileges, step, world::demo_image_tarball};

/// A tarball of a directory holding one file, made with `tar`.
fn rootfs_tarball(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("rootfs dir");
    std::fs::write(root.join("etc/hostname"), "demo\n").expect("rootfs file");
    let tarball = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(status.success(), "tar failed");
    tarball
}

#[test]
fn import_a_tarball_and_list_it() {
    require_privileges!();
    let mut world = World::new("images", 1);
    world.start_all();
    let node = world.node(1);
    let tarball = rootfs_tarball(&node.data_dir().join(".."));
    let tarball = tarball.to_str().expect("utf-8 path");

    step("shoal image import / ls");
    let id = node.shoal_ok(&["image", "import", tarball, "demo:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let listed = node.shoal_ok(&["image", "ls"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("demo "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains(" 1 "), "{row}");
    assert!(
        row.contains(&id.trim()["sha256:".len().."sha256:".len() + 12]),
        "{row}"
    );

    step("bad input is refused and changes nothing");
    let garbage = node.data_dir().join("../garbage.tar");
    std::fs::write(&garbage, b"not a tarball").expect("write");
    let refused = node
        .shoal(&[
            "image",
            "import",
            garbage.to_str().expect("utf-8"),
            "demo:2",
        ])
        .expect_err("garbage");
    assert!(refused.contains("not a tar archive"), "{refused}");
    let refused = node
        .shoal(&["image", "import", tarball, "Bad Name"])
        .expect_err("bad reference");
    assert!(refused.contains("invalid reference format"), "{refused}");
    assert_eq!(
        node.shoal_ok(&["image", "ls"]).lines().count(),
        2,
        "still one image"
    );

    step("docker import / docker images against shoald");
    let Some(imported) = node.docker(&["import", tarball, "demo:2"]) else {
        eprintln!("skipped the docker part: no docker client installed");
        return;
    };
    let imported = imported.unwrap_or_else(|e| panic!("docker import: {e}"));
    assert!(imported.trim().starts_with("sha256:"), "{imported}");
    let images = node
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .expect("docker")
        .unwrap_or_else(|e| panic!("docker images: {e}"));
    let mut refs: Vec<&str> = images.lines().collect();
    refs.sort_unstable();
    assert_eq!(refs, ["demo:1", "demo:2"], "{images}");
}

#[test]
fn the_demo_image_imports_with_its_command() {
    require_privileges!();
    let tarball = demo_image_tarball();
    let mut world = World::new("demoimage", 1);
    world.start_all();
    let node = world.node(1);

    step("import the demo image with its CMD and PATH");
    let id = node.import_demo_image();
    assert!(id.starts_with("sha256:"), "{id}");
    let store = ImageStore::new(node.data_dir().join("images"));
    assert!(store.contains("whoami").expect("reading the store"));
    let rootfs = node.data_dir().join("../rootfs");
    let config = store.unpack("whoami:latest", &rootfs).expect("unpack");
    assert_eq!(config.cmd, ["/usr/local/bin/whoami"]);
    assert!(
        config.env.iter().any(|e| e.starts_with("PATH=/")),
        "{config:?}"
    );
    for path in [
        "bin/busybox",
        "bin/sh",
        "usr/local/bin/whoami",
        "etc/passwd",
    ] {
        assert!(rootfs.join(path).exists(), "{path} in the rootfs");
    }

    step("an unsupported change is refused and changes nothing");
    let tarball = tarball.to_str().expect("utf-8 path");
    let refused = node
        .shoal(&["image", "import", "-c", "EXPOSE 80", tarball, "bad:1"])
        .expect_err("EXPOSE");
    assert!(refused.contains("invalid change"), "{refused}");
    assert!(!store.contains("bad:1").expect("reading the store"));

    step("docker import -c sets the command too");
    let Some(imported) = node.docker(&[
        "import",
        "-c",
        r#"CMD ["/bin/sleep", "60"]"#,
        "-c",
        "WORKDIR /tmp",
        tarball,
        "sleeper:1",
    ]) else {
        eprintln!("skipped the docker part: no docker client installed");
        return;
    };
    imported.unwrap_or_else(|e| panic!("docker import: {e}"));
    let config = store
        .unpack("sleeper:1", &node.data_dir().join("../rootfs2"))
        .expect("unpack");
    assert_eq!(config.cmd, ["/bin/sleep", "60"]);
    assert_eq!(config.working_dir, "/tmp");

    step("docker image inspect, by reference and by ID; a missing image is Docker's 404");
    let format = "{{.Id}} {{json .RepoTags}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{.RootFS.Type}} {{len .RootFS.Layers}} {{.Os}}";
    let inspected = node
        .docker(&["image", "inspect", "sleeper:1", "--format", format])
        .expect("docker client")
        .unwrap_or_else(|e| panic!("docker image inspect: {e}"));
    let (sleeper_id, rest) = inspected.trim().split_once(' ').expect("fields");
    assert!(
        sleeper_id.starts_with("sha256:") && sleeper_id != id,
        "{inspected}"
    );
    assert_eq!(
        rest, r#"["sleeper:1"] ["/bin/sleep","60"] /tmp layers 1 linux"#,
        "{inspected}"
    );
    let short = &sleeper_id["sha256:".len().."sha256:".len() + 12];
    let by_id = node
        .docker(&["image", "inspect", short, "--format", "{{.Id}}"])
        .expect("docker client")
        .unwrap_or_else(|e| panic!("docker image inspect {short}: {e}"));
    assert_eq!(by_id.trim(), sleeper_id);
    let missing = node
        .docker(&["image", "inspect", "nothing:here"])
        .expect("docker client")
        .expect_err("no such image");
    assert!(missing.contains("No such image: nothing:here"), "{missing}");
}

#[test]
fn an_oci_layout_is_copied_in() {
    require_privileges!();
    let mut world = World::new("layout", 2);
    world.start_all();
    let (first, second) = (world.node(1), world.node(2));

    step("node 1's store is an OCI layout holding the demo image");
    let id = first.import_demo_image();
    let layout = first.data_dir().join("images");
    let layout = layout.to_str().expect("utf-8 path");

    step("shoal image import DIR NAME:TAG on node 2 copies it");
    assert_eq!(
        second
            .shoal_ok(&["image", "import", layout, "copied:1"])
            .trim(),
        id
    );
    let store = ImageStore::new(second.data_dir().join("images"));
    let config = store
        .unpack("copied:1", &second.data_dir().join("../rootfs"))
        .expect("unpack the copy");
    assert_eq!(config.cmd, ["/usr/local/bin/whoami"]);

    step("its tar archive (oci-archive) too");
    let archive = first.data_dir().join("../layout.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(status.success(), "tar failed");
    let archived = second.shoal_ok(&[
        "image",
        "import",
        archive.to_str().expect("utf-8"),
        "archived:1",
    ]);
    assert_eq!(archived.trim(), id);

    step("a layout of two untagged-platform images is refused, nothing changes");
    first.shoal_ok(&["image", "import", layout, "second:1"]);
    let refused = second
        .shoal(&["image", "import", layout, "ambiguous:1"])
        .expect_err("two images");
    assert!(refused.contains("holds 2 images"), "{refused}");
    let refused = second
        .shoal(&["image", "import", "-c", "CMD [\"/x\"]", layout, "changed:1"])
        .expect_err("changes on a layout");
    assert!(
        refused.contains("--change applies to root filesystem"),
        "{refused}"
    );
    let listed = second.shoal_ok(&["image", "ls"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
}
