from sidecar.app.main import main

raise SystemExit(main())
