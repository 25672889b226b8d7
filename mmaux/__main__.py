"""`python -m mmaux ...`: see mmaux.cli."""
from mmaux.cli import main

raise SystemExit(main())
