"""Screens shown over the main one: help, confirmations, prompts, pickers."""
