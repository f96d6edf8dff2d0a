"""Shared pieces of the network tests: ProxylessNAS-Mobile written as a basic-space arch string."""

PROXYLESS_ARCH = (
    "K3E1-K5E3-K3E3-ID-ID-K7E3-K3E3-K5E3-K5E3-K7E6-K5E3-K5E3-K5E3-K5E6-K5E3-K5E3-K5E3-"
    "K7E6-K7E6-K7E3-K7E3-K7E6"
)
