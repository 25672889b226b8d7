"""Analysis behind the dashboard: statistics over seeds and posts, alignment metrics,
embedding layouts and attributions."""
