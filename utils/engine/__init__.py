"""Shared task engines: ``trainer`` (training loop) and ``validator`` (validation loop), with small per-task subclasses.

Import the module you need (``from utils.engine.validator import DetectionValidator``); nothing is imported here, so
loading one engine never pulls in the other.
"""
