from opensdv.cli import main

main()
