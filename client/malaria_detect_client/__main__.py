from malaria_detect_client.cli import main

main()
