from hyperhive.mcptools.server import main

main()
