"""Lambda-compatible HTTP API (2015-03-31 REST paths) so boto3 and the aws CLI work unchanged."""
