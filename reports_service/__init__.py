"""Reports service: daily order reports from ``order.created`` facts, on demand and on schedule."""
