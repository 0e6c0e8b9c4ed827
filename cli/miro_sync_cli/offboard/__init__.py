"""What `miro-sync offboard` (offboard_cmd.py) is made of: the input turned into requests (input.py), the
plan (plan.py), enqueueing (enqueue.py), the status table (records.py) and releasing held requests
(release.py). Output goes through terminal.py's consoles."""
