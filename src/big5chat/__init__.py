"""big5chat: a reproducible replication of BIG5-CHAT (Li et al. 2024, arXiv 2410.16491)."""

__version__ = "0.1.0"
