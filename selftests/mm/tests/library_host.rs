//! The library against the host kernel: PAGEMAP_SCAN with userfaultfd WP-async,
//! category probing, walk_end, errno reporting. Every test needs PAGEMAP_SCAN or
//! userfaultfd WP-async: `host_feature_tests` runs those this host supports and reports
//! the others as `host-skip:` lines (see `common/host.rs`).

#[macro_use]
#[path = "common/host.rs"]
mod host;

use mm::mem::{page_size, Mapping};
use mm::pagemap::Pagemap;
use mm::scan::{Categories, ScanArgs, ScanFlags};
use mm::uffd::Userfaultfd;
use mm::{probe, Error};

host_tests! {
    "library_host";
    written_tracking_with_uffd_wp_async: [PagemapScan, UffdWpAsync] =
        "needs PAGEMAP_SCAN and userfaultfd WP-async";
    max_pages_stops_the_walk_and_walk_end_resumes: [PagemapScan, UffdWpAsync] =
        "needs PAGEMAP_SCAN and userfaultfd WP-async";
    check_wpasync_on_unregistered_memory_is_eperm: [PagemapScan] = "needs PAGEMAP_SCAN";
    unknown_category_bit_is_einval_and_probe_finds_known_ones: [PagemapScan] = "needs PAGEMAP_SCAN";
    scan_categories_and_softdirty_crosscheck_agree: [PagemapScan] = "needs PAGEMAP_SCAN";
    uffd_features_and_unregistered_writeprotect: [UffdWpAsync] = "needs userfaultfd WP-async";
    scan_into_without_vec_write_protects_and_pagemap_is_shareable: [PagemapScan, UffdWpAsync] =
        "needs PAGEMAP_SCAN and userfaultfd WP-async";
    scan_all_never_counts_a_page_twice: [PagemapScan] = "needs PAGEMAP_SCAN";
}

/// `scan_all` over more regions than the kernel's bounce buffer (512): 1200 pages,
/// every other one present, one vec for all 600 regions. A kernel that resets walk_end
/// before each walk gives the 600 one-page regions; one with the stale walk_end of a
/// refill (6.7 to 7.2.13, this host's 6.18) must make scan_all fail naming it, never
/// return a page twice.
fn scan_all_never_counts_a_page_twice() {
    let pm = pagemap();
    let ps = page_size();
    let n = 1200;
    let m = Mapping::anon(n * ps).unwrap();
    if probe::read_pmd_pagesize().is_some() {
        m.advise(0, m.len(), libc::MADV_NOHUGEPAGE).unwrap();
    }
    for i in (0..n).step_by(2) {
        m.write(i * ps, 1);
    }
    let args = ScanArgs::new(m.addr(), m.len())
        .required(Categories::PRESENT)
        .return_mask(Categories::PRESENT)
        .vec_len(n);
    match pm.scan_all(&args) {
        Ok(all) => {
            assert_eq!(all.len(), n / 2, "{all:?}");
            for (k, r) in all.iter().enumerate() {
                assert_eq!(r.start, (m.addr() + 2 * k * ps) as u64, "{r:?}");
                assert_eq!(r.pages(), 1, "{r:?}");
            }
        }
        Err(e) => {
            let s = e.to_string();
            assert!(
                s.contains("stale walk_end of a bounce-buffer refill"),
                "{s}"
            );
            eprintln!("host-known-bug: library_host::scan_all_never_counts_a_page_twice: {s}");
        }
    }
}

/// The pagemap file (the caller's features include PAGEMAP_SCAN).
fn pagemap() -> Pagemap {
    Pagemap::open().expect("open pagemap")
}

/// A WP-async userfaultfd (the caller's features include it: any error fails).
fn wp_uffd() -> Userfaultfd {
    Userfaultfd::wp_async_anon().expect("userfaultfd WP-async")
}

const WRITTEN_ARGS: fn(&Mapping) -> ScanArgs = |m| {
    ScanArgs::new(m.addr(), m.len())
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN)
        .vec_len(m.pages())
};

fn written_tracking_with_uffd_wp_async() {
    let pm = pagemap();
    let uffd = wp_uffd();
    let ps = page_size();
    let m = Mapping::anon(8 * ps).unwrap();
    uffd.wp_init(m.addr(), m.len()).unwrap();

    // Freshly protected: nothing written.
    let r = pm.scan(&WRITTEN_ARGS(&m)).unwrap();
    assert!(r.regions.is_empty(), "{r:?}");
    assert_eq!(r.walk_end, (m.addr() + m.len()) as u64);

    // Write pages 2 and 3 and 6: two regions, WRITTEN.
    m.write(2 * ps, 1);
    m.write(3 * ps, 1);
    m.write(6 * ps, 1);
    let r = pm.scan(&WRITTEN_ARGS(&m)).unwrap();
    let got: Vec<(u64, u64)> = r
        .regions
        .iter()
        .map(|g| ((g.start - m.addr() as u64) / ps as u64, g.pages()))
        .collect();
    assert_eq!(got, vec![(2, 2), (6, 1)], "{r:?}");
    assert!(r
        .regions
        .iter()
        .all(|g| g.categories == Categories::WRITTEN));
    // The written pages lost their uffd-wp bit; WP_MATCHING re-protects them.
    assert!(!pm.entry(m.addr() + 2 * ps).unwrap().uffd_wp());
    let r = pm
        .scan(&WRITTEN_ARGS(&m).flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC))
        .unwrap();
    assert_eq!(r.total_pages(), 3, "{r:?}");
    assert!(pm.entry(m.addr() + 2 * ps).unwrap().uffd_wp());
    let r = pm.scan(&WRITTEN_ARGS(&m)).unwrap();
    assert!(
        r.regions.is_empty(),
        "WP_MATCHING must clear WRITTEN: {r:?}"
    );

    // WPALLOWED is reported for the registered range.
    let r = pm
        .scan(
            &ScanArgs::new(m.addr(), m.len())
                .return_mask(Categories::WPALLOWED)
                .anyof(Categories::WPALLOWED)
                .vec_len(4),
        )
        .unwrap();
    assert_eq!(r.total_pages(), 8, "{r:?}");

    // Un-protect page 0 explicitly: it reads as written.
    uffd.writeprotect(m.addr(), ps, false).unwrap();
    let r = pm.scan(&WRITTEN_ARGS(&m)).unwrap();
    assert_eq!(r.regions.len(), 1, "{r:?}");
    assert_eq!(r.regions[0].start, m.addr() as u64);
    uffd.wp_free(m.addr(), m.len()).unwrap();
}

fn max_pages_stops_the_walk_and_walk_end_resumes() {
    let pm = pagemap();
    let uffd = wp_uffd();
    let ps = page_size();
    let m = Mapping::anon(6 * ps).unwrap();
    uffd.wp_init(m.addr(), m.len()).unwrap();
    for p in [0, 2, 4] {
        m.write(p * ps, 1);
    }
    let args = WRITTEN_ARGS(&m).max_pages(1);
    let r = pm.scan(&args).unwrap();
    assert_eq!(r.total_pages(), 1, "{r:?}");
    // The walk stops after the first page and no later than the next match (page 2);
    // the kernel notices the limit when it meets that next match.
    let we = r.walk_end - m.addr() as u64;
    assert!((ps as u64..=2 * ps as u64).contains(&we), "{r:?}");
    // scan_all resumes from walk_end to the end.
    let all = pm.scan_all(&args).unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    // A full vec also stops the walk early, just past the last region it reported.
    let r = pm.scan(&WRITTEN_ARGS(&m).vec_len(1)).unwrap();
    assert_eq!(r.regions.len(), 1);
    assert!(r.walk_end < (m.addr() + m.len()) as u64, "{r:?}");
    assert!(r.walk_end >= r.regions[0].end, "{r:?}");
}

fn check_wpasync_on_unregistered_memory_is_eperm() {
    let pm = pagemap();
    let m = Mapping::anon(2 * page_size()).unwrap();
    m.write(0, 1);
    let e = pm
        .scan(&WRITTEN_ARGS(&m).flags(ScanFlags::CHECK_WPASYNC))
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EPERM), "{e}");
    let s = e.to_string();
    assert!(
        s.starts_with("ioctl(PAGEMAP_SCAN)(size=96, flags=CHECK_WPASYNC, start=0x"),
        "{s}"
    );
    assert!(s.contains("EPERM"), "{s}");
}

fn unknown_category_bit_is_einval_and_probe_finds_known_ones() {
    let pm = pagemap();
    let m = Mapping::anon(page_size()).unwrap();
    let e = pm
        .scan(&ScanArgs::new(m.addr(), m.len()).return_mask(Categories(1 << 40)))
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    assert!(matches!(e, Error::Sys { .. }));

    let cats = probe::supported_categories(&pm).unwrap();
    assert!(
        cats.contains(Categories::BASE),
        "6.7's categories missing: {cats}"
    );
    assert!(!cats.intersects(Categories(1 << 40 | 1 << 63)), "{cats}");
    // Contiguous from bit 0: the kernel's PM_SCAN_CATEGORIES grows by appending.
    assert!((cats.bits() + 1).is_power_of_two(), "{cats}");
    eprintln!(
        "kernel {} accepts categories {cats}",
        probe::kernel_release()
    );
}

fn scan_categories_and_softdirty_crosscheck_agree() {
    let pm = pagemap();
    let m = Mapping::anon(2 * page_size()).unwrap();
    m.write(0, 1);
    let c = pm.scan_categories(m.addr()).unwrap();
    assert!(c.contains(Categories::PRESENT), "{c}");
    assert!(!c.intersects(Categories::FILE | Categories::SWAPPED), "{c}");
    let c2 = pm.scan_categories(m.addr() + page_size()).unwrap();
    assert!(!c2.contains(Categories::PRESENT), "{c2}");
    // The cross-checked helpers do not report a mismatch on a sane kernel.
    let sd = pm.is_softdirty(m.addr()).unwrap();
    assert_eq!(sd, pm.entry(m.addr()).unwrap().soft_dirty());
    assert!(pm.is_populated(m.addr()).unwrap());
    assert!(!pm.is_populated(m.addr() + page_size()).unwrap());
}

fn uffd_features_and_unregistered_writeprotect() {
    let features = mm::uffd::supported_features().expect("UFFDIO_API handshake");
    eprintln!("uffd features: {}", mm::uapi::uffd_feature_names(features));
    let uffd = wp_uffd();
    assert!(uffd.features() & mm::uapi::UFFD_FEATURE_WP_ASYNC != 0);
    let m = Mapping::anon(page_size()).unwrap();
    // Write-protecting a range that was never registered fails (ENOENT).
    let e = uffd.writeprotect(m.addr(), m.len(), true).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
    assert!(
        e.to_string()
            .starts_with("ioctl(UFFDIO_WRITEPROTECT)(start=0x"),
        "{e}"
    );
    // Register/unregister round trip.
    let ioctls = uffd.register_wp(m.addr(), m.len()).unwrap();
    assert!(ioctls & (1 << mm::uapi::_UFFDIO_WRITEPROTECT) != 0);
    uffd.unregister(m.addr(), m.len()).unwrap();
}

fn scan_into_without_vec_write_protects_and_pagemap_is_shareable() {
    fn shareable<T: Sync + Send>() {}
    shareable::<Pagemap>();
    shareable::<Mapping>();

    let pm = pagemap();
    let uffd = wp_uffd();
    let ps = page_size();
    let m = Mapping::anon(4 * ps).unwrap();
    uffd.wp_init(m.addr(), m.len()).unwrap();
    m.write(ps, 1);
    let mut vec = [mm::uapi::page_region::default(); 4];
    let (n, walk_end) = pm.scan_into(&WRITTEN_ARGS(&m), &mut vec).unwrap();
    assert_eq!(n, 1);
    assert_eq!(vec[0].start, (m.addr() + ps) as u64);
    assert_eq!(walk_end, (m.addr() + m.len()) as u64);
    // vec = NULL, vec_len = 0 with WP_MATCHING: nothing returned, pages re-protected.
    let args = WRITTEN_ARGS(&m).flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC);
    let (n, walk_end) = pm.scan_into(&args, &mut []).unwrap();
    assert_eq!((n, walk_end), (0, (m.addr() + m.len()) as u64));
    let (n, _) = pm.scan_into(&WRITTEN_ARGS(&m), &mut vec).unwrap();
    assert_eq!(n, 0, "written page not re-protected: {:?}", &vec[..1]);
    // From several threads at once.
    std::thread::scope(|s| {
        for t in 0..4 {
            let (pm, m) = (&pm, &m);
            s.spawn(move || {
                m.write(t * ps, 2);
                let r = pm.scan(&WRITTEN_ARGS(m)).unwrap();
                assert!(r.total_pages() >= 1, "{r:?}");
            });
        }
    });
}
