"""Logs in, sessions out: bounded line reading, raw provider logs, parallel jobs, resumable store replays."""
