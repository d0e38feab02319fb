"""Resource groups: one module per documented group, each with one `ENDPOINTS` table."""
