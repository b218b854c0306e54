//! Packet fixtures through `BPF_PROG_TEST_RUN` (katran's fixtures, aya's
//! `prog_test_run`): hand-built frames into the real programs, checking the
//! verdict and exactly what each frame added to the counter maps.

use std::path::PathBuf;

use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp};
use pnet_packet::{
    MutablePacket,
    ethernet::{EtherTypes, MutableEthernetPacket},
    ip::IpNextHeaderProtocols,
    ipv4::MutableIpv4Packet,
    ipv6::MutableIpv6Packet,
};
use shoal_agent::dataplane::{Counters, ensure_bpffs_mounted, load_object};
use shoal_ebpf_common::program_names;
use shoal_netns_tests::require_privileges;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// `TC_ACT_UNSPEC` (-1) as the kernel reports it.
const TC_NEXT: u32 = u32::MAX;

/// A private pin directory, removed on drop.
struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn ethernet(ethertype: pnet_packet::ethernet::EtherType, l3: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; 14 + l3.len()];
    let mut eth = MutableEthernetPacket::new(&mut frame).expect("buffer fits");
    eth.set_destination([2, 0, 0, 0, 0, 2].into());
    eth.set_source([2, 0, 0, 0, 0, 1].into());
    eth.set_ethertype(ethertype);
    eth.payload_mut().copy_from_slice(l3);
    frame
}

fn ipv4(protocol: u8, header_len_words: u8, payload: usize) -> Vec<u8> {
    let mut l3 = vec![0u8; 20 + payload];
    let mut ip = MutableIpv4Packet::new(&mut l3).expect("buffer fits");
    ip.set_version(4);
    ip.set_header_length(header_len_words);
    ip.set_total_length(u16::try_from(20 + payload).expect("small"));
    ip.set_ttl(64);
    ip.set_next_level_protocol(pnet_packet::ip::IpNextHeaderProtocol(protocol));
    ip.set_source([198, 18, 0, 1].into());
    ip.set_destination([198, 18, 0, 2].into());
    l3
}

fn ipv6(next: u8, payload: usize) -> Vec<u8> {
    let mut l3 = vec![0u8; 40 + payload];
    let mut ip = MutableIpv6Packet::new(&mut l3).expect("buffer fits");
    ip.set_version(6);
    ip.set_payload_length(u16::try_from(payload).expect("small"));
    ip.set_next_header(pnet_packet::ip::IpNextHeaderProtocol(next));
    ip.set_hop_limit(64);
    l3
}

#[test]
fn fixture_frames_get_the_right_verdicts_and_counts() {
    require_privileges!();
    ensure_bpffs_mounted(std::path::Path::new("/sys/fs/bpf")).expect("bpffs");
    let pins = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/shoal/fixtures-{}",
        std::process::id()
    )));
    std::fs::create_dir_all(&pins.0).expect("pin dir");
    let mut ebpf = load_object(&pins.0).expect("load object");

    let udp4 = ethernet(
        EtherTypes::Ipv4,
        &ipv4(IpNextHeaderProtocols::Udp.0, 5, 8 + 100),
    );
    let tcp6 = ethernet(EtherTypes::Ipv6, &ipv6(IpNextHeaderProtocols::Tcp.0, 20));
    let arp = ethernet(EtherTypes::Arp, &[0u8; 28]);
    let short_ip4 = ethernet(
        EtherTypes::Ipv4,
        &ipv4(IpNextHeaderProtocols::Udp.0, 5, 0)[..12],
    );
    let bad_ihl = ethernet(EtherTypes::Ipv4, &ipv4(IpNextHeaderProtocols::Udp.0, 4, 8));
    let short_ip6 = ethernet(
        EtherTypes::Ipv6,
        &ipv6(IpNextHeaderProtocols::Tcp.0, 0)[..30],
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

    {
        let xdp: &mut Xdp = ebpf
            .program_mut(program_names::XDP_UNDERLAY)
            .expect("xdp program")
            .try_into()
            .expect("is XDP");
        xdp.load().expect("verifier accepts xdp_underlay");
        for (frame, verdict, times) in cases {
            for _ in 0..times {
                let result = xdp
                    .test_run(TestRunOptions {
                        data_in: Some(frame),
                        ..TestRunOptions::new()
                    })
                    .expect("BPF_PROG_TEST_RUN");
                assert_eq!(
                    result.return_value,
                    verdict,
                    "XDP verdict for a {}-byte frame",
                    frame.len()
                );
            }
        }
    }
    {
        let tc: &mut SchedClassifier = ebpf
            .program_mut(program_names::TC_UNDERLAY_EGRESS)
            .expect("tc program")
            .try_into()
            .expect("is a classifier");
        tc.load().expect("verifier accepts tc_underlay_egress");
        for frame in [&udp4, &tcp6, &arp] {
            let result = tc
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    ..TestRunOptions::new()
                })
                .expect("BPF_PROG_TEST_RUN");
            assert_eq!(result.return_value, TC_NEXT, "tc hands every packet on");
        }
    }

    let counters = Counters::from_ebpf(&mut ebpf)
        .expect("counter maps")
        .read()
        .expect("read");
    let ingress = &counters["underlay_ingress"];
    let udp = ingress.protocols["udp"];
    assert_eq!(udp.packets, 3);
    assert_eq!(udp.bytes, 3 * udp4.len() as u64);
    assert_eq!(ingress.protocols["tcp"].packets, 2);
    assert_eq!(
        ingress.protocols.len(),
        2,
        "dropped frames are not counted by protocol: {ingress:?}"
    );
    assert_eq!(ingress.verdicts["pass_ip"], 5);
    assert_eq!(ingress.verdicts["pass_not_ip"], 1);
    assert_eq!(ingress.verdicts["drop_bad_ip_header"], 3);
    assert_eq!(ingress.verdicts["drop_short_frame"], 0);
    let egress = &counters["underlay_egress"];
    assert_eq!(egress.protocols["udp"].packets, 1);
    assert_eq!(egress.protocols["tcp"].packets, 1);
    assert_eq!(egress.verdicts["pass_ip"], 2);
    assert_eq!(egress.verdicts["pass_not_ip"], 1);
}
