"""The console's domain: people and their access, formatting, and the view model of every
page. Plain functions and classes, no I/O."""
