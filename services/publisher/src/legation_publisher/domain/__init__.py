"""The publisher's rules, free of I/O: what a valid post is and what its publication says."""
