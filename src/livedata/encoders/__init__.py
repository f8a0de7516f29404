"""Response encoders: Arrow in, bytes out. The only place rows become JSON, CSV or files."""
