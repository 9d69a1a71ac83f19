"""Benchmarks and the agent task suite (bench/agent_suite.py, bench/agent_tasks/)."""
