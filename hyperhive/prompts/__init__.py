"""System prompts for the two flavors (agent, manager), shipped as package data."""
