"""Seeing what happened: per-line traces, the HTML timeline, audits against another orchestrator."""
