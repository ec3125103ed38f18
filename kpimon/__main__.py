from kpimon.cli import main

main()
