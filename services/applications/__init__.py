"""The application registry: credentials, public keys, webhook URLs and secrets,
kept on the compacted ``dispatch.applications`` topic."""
