"""LGPD: what we hold about one customer, exported or erased, and the retention of message texts."""
