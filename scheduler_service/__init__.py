"""Scheduler service: cron schedules in the database, each instant fired exactly once by any number of replicas."""
