"""Legation's Engage step: mentions that ask something become inbox conversations."""
