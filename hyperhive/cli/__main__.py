from hyperhive.cli.main import main

main()
