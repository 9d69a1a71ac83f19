"""Running the proxy as a child process: the one launcher (supervisor.py) and the records of running
proxies (records.py)."""
