# The authorizer: read-only modes and policies compiled to a C table (issue: read-only modes).
