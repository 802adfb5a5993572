//! The encoding of networks ([`IpNet`]) and interface addresses
//! ([`InterfaceAddress`]): a family byte (`4` or `6`), the address's
//! octets, then the prefix length. A network with host bits set has no
//! encoding: the reader refuses it, so a range or an allowed IP a rival
//! signs means exactly the addresses it shows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sentrymesh_types::{InterfaceAddress, IpNet, IpNetError};

use super::{DecodeError, Reader, Writer};

impl Writer {
    /// Writes a network.
    pub(crate) fn ip_net(&mut self, net: &IpNet) {
        self.address_and_prefix(net.addr(), net.prefix_len());
    }

    /// Writes an interface address.
    pub(crate) fn interface_address(&mut self, address: &InterfaceAddress) {
        self.address_and_prefix(address.addr(), address.prefix_len());
    }

    fn address_and_prefix(&mut self, addr: IpAddr, prefix_len: u8) {
        match addr {
            IpAddr::V4(a) => {
                self.u8(4);
                self.array(&a.octets());
            }
            IpAddr::V6(a) => {
                self.u8(6);
                self.array(&a.octets());
            }
        }
        self.u8(prefix_len);
    }
}

impl Reader<'_> {
    /// Reads a network, refusing one with host bits set.
    pub(crate) fn ip_net(&mut self, field: &'static str) -> Result<IpNet, DecodeError> {
        let (addr, prefix_len) = self.address_and_prefix(field)?;
        IpNet::new(addr, prefix_len).map_err(|error| DecodeError::Invalid {
            field,
            reason: match error {
                IpNetError::HostBits { .. } => "host bits set",
                _ => "prefix longer than the address",
            },
        })
    }

    /// Reads an interface address.
    pub(crate) fn interface_address(
        &mut self,
        field: &'static str,
    ) -> Result<InterfaceAddress, DecodeError> {
        let (addr, prefix_len) = self.address_and_prefix(field)?;
        InterfaceAddress::new(addr, prefix_len).map_err(|_| DecodeError::Invalid {
            field,
            reason: "prefix longer than the address",
        })
    }

    fn address_and_prefix(&mut self, field: &'static str) -> Result<(IpAddr, u8), DecodeError> {
        let addr = match self.u8(field)? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?)),
            family => {
                return Err(DecodeError::BadValue {
                    field,
                    value: family.into(),
                });
            }
        };
        Ok((addr, self.u8(field)?))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn decoding_refuses_impossible_values() {
        let mut r = Reader::new(&[4, 198, 18, 0, 1, 33]);
        assert!(matches!(
            r.interface_address("address"),
            Err(DecodeError::Invalid { .. })
        ));
        let mut r = Reader::new(&[5, 198, 18, 0, 1, 32]);
        assert_eq!(
            r.ip_net("allowed IP"),
            Err(DecodeError::BadValue {
                field: "allowed IP",
                value: 5
            })
        );
    }

    #[test]
    fn a_network_with_host_bits_is_refused() {
        let bytes = [4, 198, 18, 7, 1, 24];
        assert_eq!(
            Reader::new(&bytes).ip_net("allowed IP"),
            Err(DecodeError::Invalid {
                field: "allowed IP",
                reason: "host bits set"
            })
        );
        let address = Reader::new(&bytes).interface_address("address").unwrap();
        assert_eq!(address.to_string(), "198.18.7.1/24");
    }

    fn any_address() -> impl Strategy<Value = InterfaceAddress> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, p)| InterfaceAddress::new(
                Ipv4Addr::from(a).into(),
                p
            )
            .unwrap()),
            (any::<u128>(), 0u8..=128).prop_map(|(a, p)| InterfaceAddress::new(
                Ipv6Addr::from(a).into(),
                p
            )
            .unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn binary_round_trips(address in any_address()) {
            let mut w = Writer::new();
            w.interface_address(&address);
            w.ip_net(&address.network());
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.interface_address("address").unwrap(), address);
            prop_assert_eq!(r.ip_net("network").unwrap(), address.network());
            prop_assert!(r.finish().is_ok());
        }
    }
}
