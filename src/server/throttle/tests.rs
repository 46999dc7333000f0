use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn limits(pair: u32, address: u32, account: u32, window_ms: u64) -> LoginLimits {
    LoginLimits {
        per_account_and_address: NonZeroU32::new(pair).unwrap(),
        per_address: NonZeroU32::new(address).unwrap(),
        per_account: NonZeroU32::new(account).unwrap(),
        window: Duration::from_millis(window_ms),
        ..LoginLimits::default()
    }
}

fn v4(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

#[test]
fn one_account_from_one_address_gets_its_burst_then_a_wait() {
    let throttle = LoginThrottle::new(limits(3, 100, 100, 60_000));
    for _ in 0..3 {
        throttle.check("alice", v4(1)).unwrap().failed();
    }
    let refused = throttle.check("alice", v4(1)).unwrap_err();
    assert_eq!(refused.limit, ThrottleLimit::AccountAndAddress);
    assert!(refused.retry_after > Duration::from_secs(19));
    assert!(
        refused.retry_after <= Duration::from_secs(20),
        "{refused:?}"
    );
    assert!(throttle.check("alice", v4(2)).is_ok(), "another address");
    assert!(throttle.check("bob", v4(1)).is_ok(), "another account");
}

#[test]
fn the_limit_refills_within_the_window() {
    let throttle = LoginThrottle::new(limits(2, 100, 100, 200));
    throttle.check("alice", v4(1)).unwrap().failed();
    throttle.check("alice", v4(1)).unwrap().failed();
    let refused = throttle.check("alice", v4(1)).unwrap_err();
    std::thread::sleep(refused.retry_after + Duration::from_millis(5));
    assert!(throttle.check("alice", v4(1)).is_ok());
}

#[test]
fn one_address_trying_many_accounts_is_limited() {
    let throttle = LoginThrottle::new(limits(100, 4, 100, 60_000));
    for n in 0..4 {
        throttle.check(&format!("user{n}"), v4(1)).unwrap().failed();
    }
    let refused = throttle.check("user9", v4(1)).unwrap_err();
    assert_eq!(refused.limit, ThrottleLimit::Address);
    assert!(throttle.check("user9", v4(2)).is_ok());
}

#[test]
fn many_addresses_on_one_account_slow_new_addresses_but_not_known_ones() {
    let throttle = LoginThrottle::new(limits(100, 100, 3, 60_000));
    // The user signed in from .1 before.
    throttle.check("alice", v4(1)).unwrap().succeeded();
    for n in 10..13 {
        throttle.check("alice", v4(n)).unwrap().failed();
    }
    let refused = throttle.check("alice", v4(20)).unwrap_err();
    assert_eq!(refused.limit, ThrottleLimit::Account);
    // The attack goes on; the user's own address is not locked out.
    for _ in 0..5 {
        assert!(throttle.check("alice", v4(1)).is_ok());
    }
}

#[test]
fn another_client_at_the_users_address_cannot_lock_the_user_out() {
    let throttle = LoginThrottle::new(limits(5, 4, 100, 60_000));
    throttle.check("alice", v4(1)).unwrap().succeeded();
    // Someone behind the same NAT tries a new name every time: the address limit.
    for n in 0..50 {
        let _ = throttle.check(&format!("guess{n}"), v4(1));
    }
    assert_eq!(
        throttle.check("mallory", v4(1)).unwrap_err().limit,
        ThrottleLimit::Address
    );
    assert!(
        throttle.check("alice", v4(1)).is_ok(),
        "alice still signs in"
    );
}

#[test]
fn a_device_cookie_signs_its_user_in_whatever_others_try() {
    let throttle = LoginThrottle::new(limits(2, 3, 4, 60_000));
    throttle.check("alice", v4(1)).unwrap().succeeded();
    let device = throttle.remember_device("alice").unwrap();
    // Someone at the same address guesses alice's password, and others' too.
    for n in 0..20 {
        let _ = throttle.check("alice", v4(1));
        let _ = throttle.check(&format!("x{n}"), v4(1));
    }
    assert!(throttle.check("alice", v4(1)).is_err(), "the pair is spent");
    assert!(matches!(
        throttle.check_device("alice", &device, v4(1)),
        Some(Ok(_))
    ));
    // The cookie is alice's only, and an unknown one decides nothing.
    assert!(throttle.check_device("bob", &device, v4(1)).is_none());
    assert!(throttle.check_device("alice", "forged", v4(1)).is_none());
    // It has a limit of its own.
    let _ = throttle.check_device("alice", &device, v4(1));
    let refused = throttle
        .check_device("alice", &device, v4(1))
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.limit, ThrottleLimit::Device);
}

#[test]
fn one_account_signing_in_again_and_again_cannot_crowd_out_other_devices() {
    let throttle = LoginThrottle::new(LoginLimits {
        max_keys: 40,
        ..limits(5, 100, 100, 60_000)
    });
    let bobs = throttle.remember_device("bob").unwrap();
    let first = throttle.remember_device("alice").unwrap();
    for _ in 0..100 {
        throttle.remember_device("alice").unwrap();
    }
    assert!(
        throttle.check_device("bob", &bobs, v4(1)).is_some(),
        "bob's device stays"
    );
    assert!(
        throttle.check_device("alice", &first, v4(1)).is_none(),
        "alice's oldest went"
    );
    let alices = throttle
        .devices
        .lock()
        .unwrap()
        .values()
        .filter(|(owner, _)| &**owner == "alice")
        .count();
    assert_eq!(alices, DEVICES_PER_ACCOUNT);
}

#[test]
fn a_spent_address_adds_no_pair_keys() {
    let throttle = LoginThrottle::new(limits(5, 3, 100, 60_000));
    for n in 0..1_000 {
        let _ = throttle.check(&format!("n{n}"), v4(1));
    }
    assert_eq!(throttle.by_pair.len(), 3);
}

#[test]
fn a_new_name_each_time_is_one_recorded_refusal_per_window() {
    let throttle = LoginThrottle::new(limits(5, 2, 100, 60_000));
    let firsts = (0..1_000)
        .filter_map(|n| throttle.check(&format!("n{n}"), v4(1)).err())
        .filter(|refused| refused.first)
        .count();
    assert_eq!(firsts, 1);
}

#[test]
fn the_first_refusal_of_a_window_is_marked_and_a_success_rearms_it() {
    let throttle = LoginThrottle::new(limits(2, 100, 100, 60_000));
    throttle.check("alice", v4(1)).unwrap().failed();
    let right = throttle.check("alice", v4(1)).unwrap();
    assert!(throttle.check("alice", v4(1)).unwrap_err().first);
    assert!(!throttle.check("alice", v4(1)).unwrap_err().first);
    // A right password verified meanwhile (its attempt was taken before the refusals).
    right.succeeded();
    throttle.check("alice", v4(1)).unwrap().failed();
    assert!(throttle.check("alice", v4(1)).unwrap_err().first);
}

#[test]
fn an_ipv6_host_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
    let throttle = LoginThrottle::new(limits(1, 100, 100, 60_000));
    let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
    throttle.check("alice", Some(a.into())).unwrap().failed();
    assert!(throttle.check("alice", Some(b.into())).is_err(), "same /64");
    assert!(throttle.check("alice", Some(other.into())).is_ok());
    let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
    throttle.check("bob", v4(7)).unwrap().failed();
    assert!(throttle.check("bob", Some(mapped.into())).is_err());
}

#[test]
fn memory_stays_bounded_under_a_flood_of_names() {
    let throttle = LoginThrottle::new(LoginLimits {
        max_keys: 50,
        ..limits(5, 1_000_000, 1_000_000, 60_000)
    });
    for n in 0..1_000 {
        let _ = throttle.check(&format!("{n}{}", "x".repeat(1_000)), v4(1));
    }
    assert!(throttle.by_pair.len() <= 50);
    assert!(throttle.by_account.len() <= 50);
    assert_eq!(account_key(&"é".repeat(100)).len(), NAME_BYTES);
}

#[test]
fn ten_right_passwords_in_a_row_without_a_device_cookie_are_all_admitted() {
    let throttle = LoginThrottle::new(LoginLimits::default());
    for n in 0..10 {
        let attempt = throttle
            .check("alice", v4(1))
            .unwrap_or_else(|refused| panic!("sign-in {n}: {refused:?}"));
        attempt.succeeded();
    }
    // Not even one of the limits moved: the wrong passwords still get their full burst.
    for _ in 0..5 {
        throttle.check("alice", v4(1)).unwrap().failed();
    }
    let refused = throttle.check("alice", v4(1)).unwrap_err();
    assert_eq!(refused.limit, ThrottleLimit::AccountAndAddress);
}

#[test]
fn wrong_passwords_are_throttled_at_the_limit_between_right_ones() {
    let throttle = LoginThrottle::new(limits(3, 100, 100, 60_000));
    for _ in 0..3 {
        throttle.check("alice", v4(1)).unwrap().succeeded();
        throttle.check("alice", v4(1)).unwrap().failed();
    }
    // Three failures: the fourth attempt, right or wrong, waits.
    assert!(throttle.check("alice", v4(1)).is_err());
    // Dropping an attempt unsettled counts it as failed.
    let throttle = LoginThrottle::new(limits(2, 100, 100, 60_000));
    drop(throttle.check("alice", v4(1)).unwrap());
    drop(throttle.check("alice", v4(1)).unwrap());
    assert!(throttle.check("alice", v4(1)).is_err());
}

#[test]
fn concurrent_guesses_are_held_to_the_limit_while_being_verified() {
    let throttle = LoginThrottle::new(limits(3, 100, 100, 60_000));
    // A thousand guesses arrive before any verification ends: the burst gets through.
    let in_flight: Vec<Attempt<'_>> = (0..1_000)
        .filter_map(|_| throttle.check("alice", v4(1)).ok())
        .collect();
    assert_eq!(in_flight.len(), 3);
    for attempt in in_flight {
        attempt.failed();
    }
    assert!(throttle.check("alice", v4(1)).is_err());
}

#[test]
fn an_unverified_attempt_is_given_back() {
    let throttle = LoginThrottle::new(limits(1, 1, 1, 60_000));
    for _ in 0..5 {
        throttle.check("alice", v4(1)).unwrap().unverified();
    }
    throttle.check("alice", v4(1)).unwrap().failed();
    assert!(throttle.check("alice", v4(1)).is_err());
}

#[test]
fn a_refused_attempt_takes_nothing_from_the_other_limits() {
    // The pair limit is spent; hammering it does not spend the address limit.
    let throttle = LoginThrottle::new(limits(1, 3, 100, 60_000));
    throttle.check("alice", v4(1)).unwrap().failed();
    for _ in 0..20 {
        assert_eq!(
            throttle.check("alice", v4(1)).unwrap_err().limit,
            ThrottleLimit::AccountAndAddress
        );
    }
    throttle.check("bob", v4(1)).unwrap().failed();
    throttle.check("carol", v4(1)).unwrap().failed();
    assert_eq!(
        throttle.check("dave", v4(1)).unwrap_err().limit,
        ThrottleLimit::Address
    );
}

#[test]
fn a_device_sign_in_gives_its_attempt_back_and_makes_the_pair_known() {
    let throttle = LoginThrottle::new(limits(2, 100, 1, 60_000));
    throttle.check("alice", v4(1)).unwrap().succeeded();
    let device = throttle.remember_device("alice").unwrap();
    for _ in 0..10 {
        throttle
            .check_device("alice", &device, v4(2))
            .unwrap()
            .unwrap()
            .succeeded();
    }
    // The device signed in from .2: the pair is known, the spent account limit is not its.
    throttle.check("alice", v4(3)).unwrap().failed();
    assert_eq!(
        throttle.check("alice", v4(4)).unwrap_err().limit,
        ThrottleLimit::Account
    );
    assert!(throttle.check("alice", v4(2)).is_ok());
}
