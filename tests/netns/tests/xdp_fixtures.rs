//! Packet fixtures through `BPF_PROG_TEST_RUN` (katran's fixtures, aya's
//! `prog_test_run`): hand-built frames into the real programs, checking the
//! verdict and exactly what each frame added to the counter maps; and the
//! object itself as the kernel takes it (its BTF).

use std::collections::BTreeMap;

use pnet_packet::{
    ethernet::EtherTypes,
    ip::{IpNextHeaderProtocol, IpNextHeaderProtocols},
    ipv4::MutableIpv4Packet,
};
use shoal_agent::dataplane::{Counters, load_object};
use shoal_ebpf_common::{Hook, Reason, program_names};
use shoal_netns_tests::{
    fixtures::{
        PinDir, TC_NEXT, XDP_DROP, XDP_PASS, load_classifier, load_xdp,
        packets::{ipv6_packet, underlay_frame},
        run_tc, run_xdp,
    },
    require_privileges,
};

/// A bare IPv4 header of `header_len_words` (valid or not) and `payload`
/// zero bytes, without a checksum.
fn ipv4(protocol: u8, header_len_words: u8, payload: usize) -> Vec<u8> {
    let mut l3 = vec![0u8; 20 + payload];
    let mut ip = MutableIpv4Packet::new(&mut l3).expect("buffer fits");
    ip.set_version(4);
    ip.set_header_length(header_len_words);
    ip.set_total_length(u16::try_from(20 + payload).expect("small"));
    ip.set_ttl(64);
    ip.set_next_level_protocol(IpNextHeaderProtocol(protocol));
    ip.set_source([198, 18, 0, 1].into());
    ip.set_destination([198, 18, 0, 2].into());
    l3
}

#[test]
fn fixture_frames_get_the_right_verdicts_and_counts() {
    require_privileges!();
    let pins = PinDir::new("fixtures");
    let mut ebpf = load_object(pins.path()).expect("load object");

    let udp4 = underlay_frame(
        EtherTypes::Ipv4,
        &ipv4(IpNextHeaderProtocols::Udp.0, 5, 8 + 100),
    );
    let tcp6 = underlay_frame(
        EtherTypes::Ipv6,
        &ipv6_packet(IpNextHeaderProtocols::Tcp, 20),
    );
    let arp = underlay_frame(EtherTypes::Arp, &[0u8; 28]);
    let short_ip4 = underlay_frame(
        EtherTypes::Ipv4,
        &ipv4(IpNextHeaderProtocols::Udp.0, 5, 0)[..12],
    );
    let bad_ihl = underlay_frame(EtherTypes::Ipv4, &ipv4(IpNextHeaderProtocols::Udp.0, 4, 8));
    let short_ip6 = underlay_frame(
        EtherTypes::Ipv6,
        &ipv6_packet(IpNextHeaderProtocols::Tcp, 0)[..30],
    );
    // (frame, XDP verdict, how many times)
    let cases: [(&[u8], u32, u32); 6] = [
        (&udp4, XDP_PASS, 3),
        (&tcp6, XDP_PASS, 2),
        (&arp, XDP_PASS, 1),
        (&short_ip4, XDP_DROP, 1),
        (&bad_ihl, XDP_DROP, 1),
        (&short_ip6, XDP_DROP, 1),
    ];

    let xdp = load_xdp(&mut ebpf, program_names::XDP_UNDERLAY);
    for (frame, verdict, times) in cases {
        for _ in 0..times {
            assert_eq!(
                run_xdp(xdp, frame).action,
                verdict,
                "XDP verdict for a {}-byte frame",
                frame.len()
            );
        }
    }
    let tc = load_classifier(&mut ebpf, program_names::TC_UNDERLAY_EGRESS);
    for frame in [&udp4, &tcp6, &arp] {
        assert_eq!(
            run_tc(tc, frame, None).action,
            TC_NEXT,
            "tc hands every packet on"
        );
    }

    let counters = Counters::from_ebpf(&mut ebpf)
        .expect("counter maps")
        .read()
        .expect("read");
    let counted = |pairs: &[(Reason, u64)]| -> BTreeMap<String, u64> {
        pairs
            .iter()
            .map(|&(reason, packets)| (reason.as_str().to_owned(), packets))
            .collect()
    };
    let ingress = &counters[Hook::XdpUnderlay.as_str()];
    let udp = ingress.protocols["udp"];
    assert_eq!(udp.packets, 3);
    assert_eq!(udp.bytes, 3 * udp4.len() as u64);
    assert_eq!(ingress.protocols["tcp"].packets, 2);
    assert_eq!(
        ingress.protocols.len(),
        2,
        "dropped frames are not counted by protocol: {ingress:?}"
    );
    assert_eq!(
        ingress.verdicts,
        counted(&[
            (Reason::PassIp, 5),
            (Reason::PassNotIp, 1),
            (Reason::DropBadIpHeader, 3)
        ]),
        "every frame under one reason, only counted reasons listed"
    );
    let egress = &counters[Hook::TcUnderlayEgress.as_str()];
    assert_eq!(egress.protocols["udp"].packets, 1);
    assert_eq!(egress.protocols["tcp"].packets, 1);
    assert_eq!(
        egress.verdicts,
        counted(&[(Reason::PassIp, 2), (Reason::PassNotIp, 1)])
    );
    assert_eq!(
        counters.len(),
        Hook::ALL.len(),
        "every hook listed: {counters:?}"
    );
}

/// The kernel accepts the object's BTF, so every program carries it (line
/// info, function info, typed maps). When `BPF_BTF_LOAD` refuses it, aya
/// only logs a warning and loads everything without BTF: this is what
/// notices. It refused it while a non-inlined function returned a Rust
/// enum keeping its tag away from offset 0 (see `mesh::Classified` in the
/// eBPF programs); `bpftool btf dump file <object>` shows the type.
#[test]
fn the_kernel_accepts_the_objects_btf() {
    require_privileges!();
    let pins = PinDir::new("btf");
    let mut ebpf = load_object(pins.path()).expect("load object");
    let xdp_btf = load_xdp(&mut ebpf, program_names::XDP_UNDERLAY)
        .info()
        .expect("program info")
        .btf_id();
    assert!(
        xdp_btf.is_some(),
        "{} loaded without BTF: the kernel refused the object's BTF",
        program_names::XDP_UNDERLAY
    );
    for name in [
        program_names::TC_UNDERLAY_EGRESS,
        program_names::TC_UNDERLAY_INGRESS,
    ]
    .into_iter()
    .chain(program_names::OVERLAY)
    {
        let btf = load_classifier(&mut ebpf, name)
            .info()
            .expect("program info")
            .btf_id();
        assert_eq!(btf, xdp_btf, "{name} carries the object's BTF");
    }
}
