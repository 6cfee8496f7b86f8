from pitlane.cli import main

main()
