"""BIP32 public derivation and BIP84 addresses, checked against published vectors and
against bitcoinlib as an independent implementation."""

import pytest

from chains.hd import ExtendedKeyError, ExtendedPublicKey
from chains.networks import NETWORKS
from chains.utxo import p2wpkh_destination
from tests.support.keys import random_xpub

# BIP84 test vectors: mnemonic "abandon abandon ... about", account m/84'/0'/0'
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUk"
    "gDKf31mGDtKsAYz2oz2AGutZYs"
)


def test_bip84_mainnet_vectors() -> None:
    net = NETWORKS["bitcoin"]
    assert p2wpkh_destination(BIP84_ZPUB, 0, net).address == (
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu")
    assert p2wpkh_destination(BIP84_ZPUB, 1, net).address == (
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g")
    first = p2wpkh_destination(BIP84_ZPUB, 0, net)
    assert first.match_key.hex() == "0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2"


def test_bip84_change_branch_vector() -> None:
    node = ExtendedPublicKey.parse(BIP84_ZPUB).child(1).child(0)
    assert node.key.hex() == (
        "03025324888e429ab8e3dbaf1f7802648b9cd01e9b418485c5fa4c1b9b5700e1a6")


@pytest.mark.parametrize("network", ["bitcoin", "litecoin-regtest", "bitcoin-testnet"])
def test_matches_bitcoinlib(network: str) -> None:
    from bitcoinlib.encoding import pubkeyhash_to_addr_bech32
    from bitcoinlib.keys import HDKey

    xpub = random_xpub()
    reference = HDKey(xpub)
    net = NETWORKS[network]
    for i in (0, 1, 7, 1000):
        ours = p2wpkh_destination(xpub, i, net)
        child = reference.child_public(0).child_public(i)
        expected = pubkeyhash_to_addr_bech32(child.hash160, prefix=net.hrp, witver=0)
        assert ours.address == expected


def test_private_and_malformed_keys_are_refused() -> None:
    xprv = (
        "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMR"
        "NNU3TGtRBeJgk33yuGBxrMPHi"
    )
    with pytest.raises(ExtendedKeyError, match="private"):
        ExtendedPublicKey.parse(xprv)
    with pytest.raises(ExtendedKeyError):
        ExtendedPublicKey.parse("zpubnotakey")
    with pytest.raises(ExtendedKeyError, match="hardened"):
        ExtendedPublicKey.parse(BIP84_ZPUB).child(0x80000000)
