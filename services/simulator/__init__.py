"""A local stand-in for the Messages API: accepts sends, answers with a
``message_uuid``, and posts scripted statuses back to a callback URL."""
