from contact_center.cli import main

main()
