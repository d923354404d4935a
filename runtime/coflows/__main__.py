from coflows.cli import main

main()
