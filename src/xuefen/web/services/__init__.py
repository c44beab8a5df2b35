"""Every write to the platform goes through one function here per domain
change, in one transaction, with an audit entry.  Views parse, call one of
these, and render."""
