import sys

from worker.training.train import main

sys.exit(main())
