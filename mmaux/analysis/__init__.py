"""Analysis behind the dashboard: statistics over seeds and posts, alignment metrics,
embedding layouts and attributions."""

ALPHA = 0.05  # false discovery rate of a family of effects or claim contrasts
POWER = 0.8  # the power at which "would detect" is stated
MARGIN = 3.0  # points: a difference within ±MARGIN counts as none ("equivalent": its corrected CI inside)
